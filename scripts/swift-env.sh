# Sourced by the scripts: puts a Swift toolchain on PATH (Swift 6 at /opt/swift on the project's machines).
if ! command -v swift >/dev/null 2>&1 && [ -x /opt/swift/usr/bin/swift ]; then
    export PATH="/opt/swift/usr/bin:$PATH"
fi
command -v swift >/dev/null 2>&1 || { echo "error: no Swift toolchain found (install Swift 6 and put it on PATH)" >&2; exit 1; }
