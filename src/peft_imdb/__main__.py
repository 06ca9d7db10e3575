from .cli import main

if __name__ == "__main__":  # guarded: the fork server of matrix runs imports this module as __mp_main__
    raise SystemExit(main())
