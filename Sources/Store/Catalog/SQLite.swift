import Foundation
internal import CSQLite
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// An error reported by SQLite or by this wrapper.
public struct SQLiteError: Error, CustomStringConvertible {
    /// SQLite result code (for example 1 = SQLITE_ERROR, 5 = SQLITE_BUSY, 19 = SQLITE_CONSTRAINT).
    public let code: Int32
    /// SQLite's message (`sqlite3_errmsg`) or the wrapper's explanation.
    public let message: String
    /// The SQL being run, when the error belongs to a statement.
    public let sql: String?

    /// Creates an error.
    public init(code: Int32, message: String, sql: String? = nil) {
        self.code = code
        self.message = message
        self.sql = sql
    }

    public var description: String {
        if let sql { return "SQLite error \(code): \(message) (in: \(sql))" }
        return "SQLite error \(code): \(message)"
    }
}

/// A value bound to a statement parameter.
public enum SQLiteValue: Sendable, Equatable {
    case integer(Int64)
    case blob([UInt8])
    case text(String)
    case null
}

/// One SQLite connection (`sqlite3*`), opened with `SQLITE_OPEN_FULLMUTEX` so that it may be
/// shared between threads; the statements made from it must each be used by one thread at a time.
public final class SQLiteDatabase: @unchecked Sendable {
    /// The connection; never null after init.
    let handle: OpaquePointer
    /// The path passed to `init(path:readOnly:)`.
    public let path: String

    /// Opens (creating if needed) a database file.
    ///
    /// A new file is created with mode 0600 (`open(O_CREAT|O_EXCL, 0600)` before
    /// `sqlite3_open_v2`), and an existing file that is group- or world-readable or -writable is
    /// refused with an error naming the path. The connection uses `SQLITE_OPEN_FULLMUTEX`,
    /// `journal_mode=WAL` (verified), `synchronous=NORMAL` and a 30 s busy timeout
    /// (`sqlite3_busy_timeout`). `readOnly` opens with `SQLITE_OPEN_READONLY`, does not create
    /// the file and leaves the journal mode as stored in the file. The WAL and shared-memory
    /// files that SQLite creates next to the database inherit its 0600 mode.
    /// The special path `":memory:"` opens a private in-memory database without any file checks.
    public init(path: String, readOnly: Bool = false) throws {
        self.path = path
        let inMemory = path == ":memory:"
        if !inMemory {
            if !readOnly { try SQLiteDatabase.createPrivateFile(path) }
            try SQLiteDatabase.checkPermissions(path)
        }
        var flags = SQLITE_OPEN_FULLMUTEX
        flags |= readOnly ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE)
        var db: OpaquePointer?
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(rc))
            sqlite3_close_v2(db)
            throw SQLiteError(code: rc, message: "cannot open database \(path): \(message)")
        }
        self.handle = db
        sqlite3_busy_timeout(db, 30_000)
        if !readOnly && !inMemory {
            // Switching a new database to WAL needs an exclusive lock, and SQLite answers BUSY at
            // once (without the busy handler) while another process opens it too: retry for 30 s.
            var mode = ""
            let deadline = Date().addingTimeInterval(30)
            while true {
                do {
                    mode = try queryText("PRAGMA journal_mode=WAL")
                    break
                } catch let e as SQLiteError where (e.code == SQLITE_BUSY || e.code == SQLITE_LOCKED) && Date() < deadline {
                    usleep(10_000)
                }
            }
            guard mode.lowercased() == "wal" else {
                throw SQLiteError(code: SQLITE_ERROR,
                                  message: "cannot switch \(path) to WAL journal mode (got \(mode))",
                                  sql: "PRAGMA journal_mode=WAL")
            }
        }
        try execute("PRAGMA synchronous=NORMAL")
    }

    deinit {
        sqlite3_close_v2(handle)
    }

    /// Creates `path` with mode 0600 if it does not exist yet (`open(O_CREAT|O_EXCL|O_CLOEXEC, 0600)`).
    private static func createPrivateFile(_ path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        if fd >= 0 {
            close(fd)
            return
        }
        let err = errno
        if err == EEXIST { return }
        throw SQLiteError(code: SQLITE_CANTOPEN,
                          message: "cannot create database \(path): \(String(cString: strerror(err)))")
    }

    /// Refuses a database file that other users may read or write (`stat`).
    private static func checkPermissions(_ path: String) throws {
        var info = stat()
        guard stat(path, &info) == 0 else {
            let err = errno
            throw SQLiteError(code: SQLITE_CANTOPEN,
                              message: "cannot open database \(path): \(String(cString: strerror(err)))")
        }
        let mode = info.st_mode & 0o777
        if mode & 0o066 != 0 {
            throw SQLiteError(code: SQLITE_PERM,
                              message: "refusing to open database \(path): it is accessible by group or others "
                                  + "(mode 0\(String(mode, radix: 8))); run chmod 600 on it")
        }
    }

    /// Runs `sql`, which may contain several statements separated by semicolons (`sqlite3_exec`).
    public func execute(_ sql: String) throws {
        try withLock {
            var errorMessage: UnsafeMutablePointer<CChar>?
            let rc = sqlite3_exec(handle, sql, nil, nil, &errorMessage)
            if rc != SQLITE_OK {
                let message = errorMessage.map { String(cString: $0) } ?? String(cString: sqlite3_errmsg(handle))
                sqlite3_free(errorMessage)
                throw SQLiteError(code: rc, message: message, sql: sql)
            }
        }
    }

    /// Compiles one SQL statement (`sqlite3_prepare_v2`). Throws on a syntax error, on empty SQL,
    /// and on SQL holding more than one statement (use ``execute(_:)`` for scripts).
    public func prepare(_ sql: String) throws -> SQLiteStatement {
        try withLock {
            var statement: OpaquePointer?
            var multiple = false
            let rc = sql.withCString { cSQL -> Int32 in
                var tail: UnsafePointer<CChar>?
                let rc = sqlite3_prepare_v2(handle, cSQL, -1, &statement, &tail)
                guard rc == SQLITE_OK, statement != nil, let rest = tail, rest.pointee != 0 else { return rc }
                // Anything after the first statement must be whitespace or comments.
                var extra: OpaquePointer?
                let extraRC = sqlite3_prepare_v2(handle, rest, -1, &extra, nil)
                if extra != nil || extraRC != SQLITE_OK {
                    sqlite3_finalize(extra)
                    sqlite3_finalize(statement)
                    statement = nil
                    multiple = true
                }
                return rc
            }
            if multiple {
                throw SQLiteError(code: SQLITE_MISUSE, message: "prepare takes exactly one statement; use execute for several",
                                  sql: sql)
            }
            guard rc == SQLITE_OK else {
                throw SQLiteError(code: rc, message: String(cString: sqlite3_errmsg(handle)), sql: sql)
            }
            guard let statement else {
                throw SQLiteError(code: SQLITE_MISUSE, message: "no SQL statement to prepare", sql: sql)
            }
            return SQLiteStatement(database: self, handle: statement, sql: sql)
        }
    }

    /// Runs `body` inside `BEGIN IMMEDIATE` … `COMMIT`. If `body` (or the commit) throws, the
    /// transaction is rolled back (`ROLLBACK`, when one is still open) and the error rethrown.
    /// Transactions do not nest.
    public func transaction<R>(_ body: () throws -> R) throws -> R {
        try execute("BEGIN IMMEDIATE")
        do {
            let result = try body()
            try execute("COMMIT")
            return result
        } catch {
            if sqlite3_get_autocommit(handle) == 0 {
                try? execute("ROLLBACK")
            }
            throw error
        }
    }

    /// Rows changed by the most recent INSERT, UPDATE or DELETE on this connection (`sqlite3_changes64`).
    public var changes: Int {
        Int(sqlite3_changes64(handle))
    }

    /// Row id of the most recent successful INSERT on this connection (`sqlite3_last_insert_rowid`).
    public var lastInsertRowID: Int64 {
        sqlite3_last_insert_rowid(handle)
    }

    /// Runs `body` holding the connection's mutex (`sqlite3_db_mutex`, recursive), so that the
    /// error message read after a failed call belongs to that call even when threads share
    /// the connection.
    func withLock<R>(_ body: () throws -> R) rethrows -> R {
        let mutex = sqlite3_db_mutex(handle)
        sqlite3_mutex_enter(mutex)
        defer { sqlite3_mutex_leave(mutex) }
        return try body()
    }

    /// Text of the first column of the first row of `sql`.
    private func queryText(_ sql: String) throws -> String {
        let statement = try prepare(sql)
        guard try statement.step() else {
            throw SQLiteError(code: SQLITE_ERROR, message: "no result", sql: sql)
        }
        let value = statement.text(0)
        statement.reset()
        return value
    }
}

/// A compiled statement (`sqlite3_stmt*`), finalized on deinit. Keeps its database open.
/// Use from one thread at a time.
public final class SQLiteStatement {
    /// The connection this statement belongs to.
    public let database: SQLiteDatabase
    private let handle: OpaquePointer
    /// The SQL this statement was prepared from.
    public let sql: String

    init(database: SQLiteDatabase, handle: OpaquePointer, sql: String) {
        self.database = database
        self.handle = handle
        self.sql = sql
    }

    deinit {
        sqlite3_finalize(handle)
    }

    /// Resets the statement and clears its bindings, then binds `values` to parameters 1...n.
    /// Throws unless `values.count` equals the statement's parameter count
    /// (`sqlite3_bind_parameter_count`).
    public func bind(_ values: [SQLiteValue]) throws {
        reset()
        let expected = Int(sqlite3_bind_parameter_count(handle))
        guard values.count == expected else {
            throw SQLiteError(code: SQLITE_RANGE,
                              message: "statement takes \(expected) parameters, \(values.count) given", sql: sql)
        }
        for (offset, value) in values.enumerated() {
            try bind(Int32(offset + 1), value)
        }
    }

    /// Binds `value` to the parameter at `index` (1-based) with `sqlite3_bind_int64`,
    /// `sqlite3_bind_blob64`, `sqlite3_bind_text64` or `sqlite3_bind_null`. Blobs and text are
    /// copied by SQLite (`SQLITE_TRANSIENT`); an empty blob binds a zero-length blob, not NULL.
    public func bind(_ index: Int32, _ value: SQLiteValue) throws {
        let rc: Int32
        switch value {
        case .integer(let v):
            rc = sqlite3_bind_int64(handle, index, v)
        case .null:
            rc = sqlite3_bind_null(handle, index)
        case .blob(let bytes):
            if bytes.isEmpty {
                rc = sqlite3_bind_zeroblob(handle, index, 0)
            } else {
                rc = bytes.withUnsafeBytes {
                    sqlite3_bind_blob64(handle, index, $0.baseAddress, UInt64($0.count), csqlite_transient())
                }
            }
        case .text(let string):
            var string = string
            rc = string.withUTF8 { utf8 in
                utf8.withMemoryRebound(to: CChar.self) { chars in
                    // An empty buffer may have no address; "" gives a valid pointer for zero bytes.
                    if let base = chars.baseAddress {
                        return sqlite3_bind_text64(handle, index, base, UInt64(chars.count),
                                                   csqlite_transient(), UInt8(SQLITE_UTF8))
                    }
                    return "".withCString {
                        sqlite3_bind_text64(handle, index, $0, 0, csqlite_transient(), UInt8(SQLITE_UTF8))
                    }
                }
            }
        }
        guard rc == SQLITE_OK else {
            throw SQLiteError(code: rc, message: "cannot bind parameter \(index): \(String(cString: sqlite3_errstr(rc)))",
                              sql: sql)
        }
    }

    /// Advances to the next row (`sqlite3_step`). Returns true when a row is available, false
    /// when the statement has finished. On error the statement is reset and the error thrown.
    @discardableResult
    public func step() throws -> Bool {
        try database.withLock {
            let rc = sqlite3_step(handle)
            switch rc {
            case SQLITE_ROW:
                return true
            case SQLITE_DONE:
                return false
            default:
                let message = String(cString: sqlite3_errmsg(database.handle))
                sqlite3_reset(handle)
                throw SQLiteError(code: rc, message: message, sql: sql)
            }
        }
    }

    /// Resets the statement to its start and clears all bindings
    /// (`sqlite3_reset` + `sqlite3_clear_bindings`).
    public func reset() {
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
    }

    /// Column `column` (0-based) of the current row as an integer (`sqlite3_column_int64`).
    public func int64(_ column: Int32) -> Int64 {
        sqlite3_column_int64(handle, column)
    }

    /// Column `column` of the current row as bytes (`sqlite3_column_blob`); empty for NULL or
    /// a zero-length value.
    public func blob(_ column: Int32) -> [UInt8] {
        guard let base = sqlite3_column_blob(handle, column) else { return [] }
        let count = Int(sqlite3_column_bytes(handle, column))
        return [UInt8](UnsafeRawBufferPointer(start: base, count: count))
    }

    /// Column `column` of the current row as text (`sqlite3_column_text`); empty for NULL.
    /// Invalid UTF-8 is repaired with U+FFFD.
    public func text(_ column: Int32) -> String {
        guard let base = sqlite3_column_text(handle, column) else { return "" }
        let count = Int(sqlite3_column_bytes(handle, column))
        return String(decoding: UnsafeBufferPointer(start: base, count: count), as: UTF8.self)
    }

    /// Whether column `column` of the current row is NULL (`sqlite3_column_type`).
    public func isNull(_ column: Int32) -> Bool {
        sqlite3_column_type(handle, column) == SQLITE_NULL
    }

    /// Convenience: binds `values`, steps through all rows calling `body` for each, then resets
    /// (also when `body` or a step throws).
    public func forEachRow(_ values: [SQLiteValue], _ body: (SQLiteStatement) throws -> Void) throws {
        try bind(values)
        defer { reset() }
        while try step() {
            try body(self)
        }
    }
}
