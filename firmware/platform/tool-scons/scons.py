"""PlatformIO's tool-scons entry point, backed by the `scons` package pip installed with tbn."""

import sys

import SCons.Script

if __name__ == "__main__":
    sys.exit(SCons.Script.main())
