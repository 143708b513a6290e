/// The one error type the Store layer throws above its leaves.
///
/// `code` is stable (the CLI maps it to an exit code); `message` is a single
/// human-readable line that names what failed and where.
public struct StoreError: Error, CustomStringConvertible, Sendable {
    public enum Code: String, Sendable {
        case repositoryNotFound      // no config at the location
        case repositoryExists        // init on a non-empty location
        case wrongPassword           // no key slot opens with the passphrase
        case locked                  // an exclusive lock is held by someone else
        case corrupt                 // authentication failure, bad format, hash mismatch
        case missing                 // a referenced object or blob is absent
        case snapshotNotFound
        case ambiguous               // snapshot id prefix matches several
        case invalidArgument
        case io                      // local I/O failure (ENOSPC, EACCES...)
        case unsupported
        case writeOnly               // a write-only key was asked to decrypt something
        case interrupted
    }
    public let code: Code
    public let message: String
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
    public var description: String { message }
}
