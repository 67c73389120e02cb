// The threads, monitor and sleep the transport is built with are part of what its users get.
@_exported import Threading
