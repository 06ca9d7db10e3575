from .cli import main

if __name__ == "__main__":  # guarded: matrix runs spawn child processes that import this module
    raise SystemExit(main())
