import Glibc

/// The l*xattr functions of the C library. <sys/xattr.h> is not part of Swift's Glibc
/// module, so they are resolved once with dlsym and called through typed C function pointers.
struct XattrCalls: @unchecked Sendable {
    typealias List = @convention(c) (UnsafePointer<CChar>?, UnsafeMutablePointer<CChar>?, Int) -> Int
    typealias Get = @convention(c) (UnsafePointer<CChar>?, UnsafePointer<CChar>?, UnsafeMutableRawPointer?, Int) -> Int
    typealias Set = @convention(c) (UnsafePointer<CChar>?, UnsafePointer<CChar>?, UnsafeRawPointer?, Int, Int32) -> Int32
    typealias Remove = @convention(c) (UnsafePointer<CChar>?, UnsafePointer<CChar>?) -> Int32

    let llistxattr: List
    let lgetxattr: Get
    let lsetxattr: Set
    let lremovexattr: Remove

    /// nil only if the C library lacks the functions (never the case with glibc).
    static let shared: XattrCalls? = {
        func symbol<F>(_ name: String, _ type: F.Type) -> F? {
            guard let address = dlsym(nil, name) else { return nil }   // nil == RTLD_DEFAULT
            return unsafeBitCast(address, to: F.self)
        }
        guard let list = symbol("llistxattr", List.self),
              let get = symbol("lgetxattr", Get.self),
              let set = symbol("lsetxattr", Set.self),
              let remove = symbol("lremovexattr", Remove.self) else { return nil }
        return XattrCalls(llistxattr: list, lgetxattr: get, lsetxattr: set, lremovexattr: remove)
    }()

    static func get(_ operation: String, _ path: RawPath) throws -> XattrCalls {
        guard let calls = shared else { throw PosixError(errno: ENOTSUP, operation: operation, path: path) }
        return calls
    }
}
