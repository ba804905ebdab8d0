#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The process's limit on open file descriptors, which bounds the connections a server can hold.
enum OpenFileLimit {
    /// Descriptors kept for everything but connections: the listening socket, event loops, the cache file, logs,
    /// and connections being refused.
    static let headroom = 64

    /// Raises the soft limit to the hard limit where it is lower; returns the soft limit before and after, or nil
    /// when it cannot be read.
    static func raiseToHardLimit() -> (before: Int, after: Int)? {
        var limit = rlimit()
        guard getrlimit(resource, &limit) == 0 else { return nil }
        let before = Int(clamping: limit.rlim_cur)
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(resource, &raised) != 0 {
                // An unlimited hard limit may be refused (Linux caps it at fs.nr_open): try a large finite one.
                raised.rlim_cur = min(limit.rlim_max, 1 << 20)
                _ = setrlimit(resource, &raised)
            }
        }
        guard getrlimit(resource, &limit) == 0 else { return (before, before) }
        return (before, Int(clamping: limit.rlim_cur))
    }

    #if os(Linux)
    private static let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
    #else
    private static let resource = RLIMIT_NOFILE
    #endif
}
