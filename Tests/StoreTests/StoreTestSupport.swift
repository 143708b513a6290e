import Crypto
import Glibc
@testable import Store
import XCTest

// Shared helpers for the Store unit tests (format, envelope, pack, backend, key, catalog tests).
// Names are prefixed so they cannot collide with file-private helpers of other test files.

/// A fresh directory under /tmp, removed (recursively) by `remove()`.
final class StoreTestDirectory {
    let path: RawPath

    init(_ prefix: String = "coffer-store") {
        var template = Array("/tmp/\(prefix)-XXXXXX".utf8CString)
        let ok = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) != nil }
        precondition(ok, "mkdtemp failed")
        path = RawPath(bytes: template.dropLast().map { UInt8(bitPattern: $0) })
    }

    func appending(_ component: String) -> RawPath { path.appending(component) }

    func remove() { storeTestRemoveTree(path) }
}

func storeTestRemoveTree(_ path: RawPath) {
    guard let status = try? Posix.lstat(path) else { return }
    if status.kind == .directory {
        for name in (try? Posix.readDirectory(path)) ?? [] { storeTestRemoveTree(path.appending(name)) }
    }
    try? Posix.remove(path)
}

/// Writes a file with plain libc calls (independent of the code under test).
func storeTestWriteFile(_ path: RawPath, _ bytes: [UInt8], mode: mode_t = 0o600) {
    let fd = path.withCString { open($0, O_WRONLY | O_CREAT | O_TRUNC, mode) }
    precondition(fd >= 0, "open \(path) failed: errno \(errno)")
    defer { close(fd) }
    let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    precondition(n == bytes.count)
}

/// Reads a whole file with plain libc calls.
func storeTestReadFile(_ path: RawPath) -> [UInt8]? {
    let fd = path.withCString { open($0, O_RDONLY) }
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var out: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n <= 0 { break }
        out.append(contentsOf: buffer[0..<n])
    }
    return out
}

/// Deterministic pseudo-random bytes (splitmix64), incompressible.
func storeTestBytes(count: Int, seed: UInt64) -> [UInt8] {
    var state = seed
    var out = [UInt8]()
    out.reserveCapacity(count + 8)
    while out.count < count {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        for i in 0..<8 { out.append(UInt8(truncatingIfNeeded: z >> (8 * UInt64(i)))) }
    }
    return Array(out.prefix(count))
}

func storeTestHex(_ s: String) -> [UInt8] {
    guard let b = Hex.decode(s) else { preconditionFailure("bad hex literal") }
    return b
}

/// Master secret 0x00...0x3f and repository id 0xa0...0xbf, used by every golden value.
enum StoreTestKeys {
    static let masterBytes: [UInt8] = (0..<64).map { UInt8($0) }
    static let repositoryID: [UInt8] = (0..<32).map { UInt8(0xa0 + $0) }

    static func make(repositoryID: [UInt8] = repositoryID) throws -> RepositoryKeys {
        try RepositoryKeys(master: SecretBytes(masterBytes), repositoryID: repositoryID)
    }
}

/// Asserts that `body` throws a StoreError with `code` (and returns it for further checks).
@discardableResult
func assertStoreError<T>(_ code: StoreError.Code, _ message: @autoclosure () -> String = "",
                         file: StaticString = #filePath, line: UInt = #line,
                         _ body: () throws -> T) -> StoreError? {
    do {
        _ = try body()
        XCTFail("expected StoreError(.\(code)), nothing thrown. \(message())", file: file, line: line)
    } catch let e as StoreError {
        XCTAssertEqual(e.code, code, "\(e.message). \(message())", file: file, line: line)
        return e
    } catch {
        XCTFail("expected StoreError(.\(code)), got \(error). \(message())", file: file, line: line)
    }
    return nil
}

func storeTestBlobID(_ byte: UInt8) -> BlobID { BlobID(bytes: [UInt8](repeating: byte, count: 32)) }
