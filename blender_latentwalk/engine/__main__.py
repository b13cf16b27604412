import sys

from .cpu_threads import apply

apply()  # before torch loads: libgomp reads OMP_WAIT_POLICY as it starts

if sys.argv[1:2] == ["setup-env"]:  # before cli's imports: it runs in a bare Python (Blender's), without numpy
    from .setup.environment import main as setup_main

    sys.exit(setup_main(sys.argv[2:]))

from .cli import main  # noqa: E402

sys.exit(main())
