import Glibc

/// Counts files and bytes under the backup paths (for a progress ETA). Runs alongside
/// the backup; it only reads metadata and never fails the backup.
public enum Scanner {
    public static func scan(_ paths: [RawPath], excludes: [String], progress: BackupProgress, cancelled: () -> Bool) {
        var files = 0
        var bytes: Int64 = 0
        func visit(_ p: RawPath) {
            guard !cancelled(), let st = try? Posix.lstat(p) else { return }
            if st.kind == .file { files += 1; bytes += st.size }
            guard st.kind == .directory, let names = try? Posix.readDirectory(p) else { return }
            for n in names {
                let c = p.appending(n)
                if excluded(c, n, excludes) { continue }
                visit(c)
            }
        }
        for p in paths { visit(p.normalizedAbsolute()) }
        if !cancelled() {
            progress.update { $0.totalFiles = files; $0.totalBytes = bytes }
        }
    }

    static func excluded(_ path: RawPath, _ name: [UInt8], _ patterns: [String]) -> Bool {
        guard !patterns.isEmpty else { return false }
        let full = path.bytes.map { CChar(bitPattern: $0) } + [0]
        let base = name.map { CChar(bitPattern: $0) } + [0]
        return patterns.contains { fnmatch($0, full, 0) == 0 || fnmatch($0, base, 0) == 0 }
    }
}
