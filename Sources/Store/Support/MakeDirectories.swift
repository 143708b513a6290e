extension Posix {
    /// Creates `path` and any missing parents (like `mkdir -p`); new directories get `permissions`.
    public static func makeDirectories(_ path: RawPath, permissions: UInt32) throws {
        var p = RawPath("/")
        for c in path.normalizedAbsolute().components {
            p = p.appending(c)
            if let st = try? lstat(p), st.kind == .directory { continue }
            try makeDirectory(p, permissions: permissions)
        }
    }
}
