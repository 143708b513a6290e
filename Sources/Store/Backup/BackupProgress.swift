/// Live counters of a running backup, read by the CLI's progress line. Thread-safe.
public final class BackupProgress: @unchecked Sendable {
    public struct Figures: Sendable {
        public var files = 0
        public var dirs = 0
        public var bytesDone: Int64 = 0      // bytes of file content processed (read or found unchanged)
        public var bytesRead: Int64 = 0
        public var errors = 0
        public var currentPath: RawPath? = nil
        public var totalFiles: Int?          // from the scanner, once it has finished
        public var totalBytes: Int64?
    }
    private let lock = Mutex()
    private var figures = Figures()

    public init() {}
    public var snapshot: Figures { lock.withLock { figures } }
    func update(_ body: (inout Figures) -> Void) { lock.withLock { body(&figures) } }
}
