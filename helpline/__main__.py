from helpline.cli import main

if __name__ == "__main__":  # not when a process of an import imports it (spawn)
    raise SystemExit(main())
