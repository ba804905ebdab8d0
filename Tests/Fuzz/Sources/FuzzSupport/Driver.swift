import CLibFuzzer
import Foundation

/// The signature of libFuzzer's per-input callback, `LLVMFuzzerTestOneInput`.
public typealias FuzzTarget = @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt

/// Hands control to libFuzzer with `target` as the function under test, and exits with libFuzzer's status.
///
/// Call it from the harness's `main.swift`; libFuzzer reads its own flags (`-max_total_time=`, corpus folders,
/// a crash file to replay) from the command line.
public func runFuzzer(_ target: FuzzTarget) -> Never {
    var argc = CommandLine.argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
    let status = LLVMFuzzerRunDriver(&argc, &argv, target)
    exit(status)
}

/// Reports a broken invariant on standard error and aborts, so libFuzzer keeps the input as a crash.
public func invariantFailure(_ message: String) -> Never {
    FileHandle.standardError.write(Data("fuzz invariant broken: \(message)\n".utf8))
    abort()
}

/// Aborts through ``invariantFailure(_:)`` when `condition` is false.
public func require(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { invariantFailure(message()) }
}

/// The bytes libFuzzer passed, as a buffer (empty for a null pointer).
public func fuzzBytes(_ data: UnsafePointer<UInt8>?, _ size: Int) -> UnsafeBufferPointer<UInt8> {
    guard let data, size > 0 else { return UnsafeBufferPointer(start: nil, count: 0) }
    return UnsafeBufferPointer(start: data, count: size)
}
