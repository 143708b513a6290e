import Foundation
import XCTest
import Store

final class SQLiteTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("sqlite-tests-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    private func dbPath(_ name: String = "catalog.db") -> String {
        directory.appendingPathComponent(name).path
    }

    private func mode(_ path: String) throws -> Int {
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        return (attributes[.posixPermissions] as! NSNumber).intValue
    }

    private func count(_ db: SQLiteDatabase, _ table: String) throws -> Int64 {
        let statement = try db.prepare("SELECT count(*) FROM \(table)")
        XCTAssertTrue(try statement.step())
        return statement.int64(0)
    }

    func testNewFileIsCreatedWithMode0600IncludingWAL() throws {
        let path = dbPath()
        XCTAssertFalse(FileManager.default.fileExists(atPath: path))
        let db = try SQLiteDatabase(path: path)
        XCTAssertEqual(db.path, path)
        XCTAssertEqual(try mode(path), 0o600)
        try db.execute("CREATE TABLE t(x INTEGER); INSERT INTO t VALUES (1);")
        XCTAssertTrue(FileManager.default.fileExists(atPath: path + "-wal"))
        XCTAssertEqual(try mode(path + "-wal"), 0o600)
        XCTAssertEqual(try mode(path + "-shm"), 0o600)
    }

    func testConnectionSettings() throws {
        let db = try SQLiteDatabase(path: dbPath())
        let journal = try db.prepare("PRAGMA journal_mode")
        XCTAssertTrue(try journal.step())
        XCTAssertEqual(journal.text(0), "wal")
        let synchronous = try db.prepare("PRAGMA synchronous")
        XCTAssertTrue(try synchronous.step())
        XCTAssertEqual(synchronous.int64(0), 1, "NORMAL")
        let timeout = try db.prepare("PRAGMA busy_timeout")
        XCTAssertTrue(try timeout.step())
        XCTAssertEqual(timeout.int64(0), 30_000)
    }

    func testGroupOrWorldReadableFileIsRefused() throws {
        let path = dbPath()
        do {
            let db = try SQLiteDatabase(path: path)
            try db.execute("CREATE TABLE t(x)")
        }
        for bad in [0o640, 0o604, 0o644, 0o660] {
            try FileManager.default.setAttributes([.posixPermissions: bad], ofItemAtPath: path)
            for readOnly in [false, true] {
                XCTAssertThrowsError(try SQLiteDatabase(path: path, readOnly: readOnly)) { error in
                    guard let error = error as? SQLiteError else { return XCTFail("not an SQLiteError: \(error)") }
                    XCTAssertTrue(error.message.contains(path), error.message)
                    XCTAssertTrue(error.description.contains(path))
                }
            }
        }
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
        let db = try SQLiteDatabase(path: path)
        XCTAssertEqual(try count(db, "t"), 0)
    }

    func testExistingEmptyFileWithMode0600IsUsed() throws {
        let path = dbPath()
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: nil,
                                                     attributes: [.posixPermissions: 0o600]))
        let db = try SQLiteDatabase(path: path)
        try db.execute("CREATE TABLE t(x)")
        XCTAssertEqual(try count(db, "t"), 0)
    }

    func testMissingDirectoryGivesError() {
        let path = directory.appendingPathComponent("no/such/dir.db").path
        XCTAssertThrowsError(try SQLiteDatabase(path: path)) { error in
            XCTAssertTrue((error as? SQLiteError)?.message.contains(path) ?? false, "\(error)")
        }
        XCTAssertThrowsError(try SQLiteDatabase(path: dbPath("absent.db"), readOnly: true))
        XCTAssertFalse(FileManager.default.fileExists(atPath: dbPath("absent.db")), "read-only must not create")
    }

    func testInsertAndSelectAllValueKinds() throws {
        let db = try SQLiteDatabase(path: dbPath())
        try db.execute("CREATE TABLE v(id INTEGER PRIMARY KEY, i INTEGER, b BLOB, t TEXT)")
        let insert = try db.prepare("INSERT INTO v(i, b, t) VALUES (?, ?, ?)")
        let zeroes: [UInt8] = [0, 1, 0, 0, 255, 0]
        let rows: [[SQLiteValue]] = [
            [.integer(Int64.max), .blob(zeroes), .text("héllo, wörld ☕️")],
            [.integer(Int64.min), .blob([]), .text("")],
            [.null, .null, .null],
            [.integer(0), .blob([UInt8](repeating: 0, count: 4096)), .text("a\u{0}b")],
        ]
        var ids: [Int64] = []
        for row in rows {
            try insert.bind(row)
            XCTAssertFalse(try insert.step())
            XCTAssertEqual(db.changes, 1)
            ids.append(db.lastInsertRowID)
        }
        XCTAssertEqual(ids, [1, 2, 3, 4])

        let select = try db.prepare("SELECT i, b, t, typeof(b) FROM v WHERE id = ?")
        func fetch(_ id: Int64) throws -> (Int64, [UInt8], String, Bool, Bool, Bool, String) {
            try select.bind([.integer(id)])
            XCTAssertTrue(try select.step())
            let result = (select.int64(0), select.blob(1), select.text(2),
                          select.isNull(0), select.isNull(1), select.isNull(2), select.text(3))
            XCTAssertFalse(try select.step())
            return result
        }
        let r1 = try fetch(1)
        XCTAssertEqual(r1.0, Int64.max)
        XCTAssertEqual(r1.1, zeroes)
        XCTAssertEqual(r1.2, "héllo, wörld ☕️")
        XCTAssertEqual(r1.6, "blob")
        let r2 = try fetch(2)
        XCTAssertEqual(r2.0, Int64.min)
        XCTAssertEqual(r2.1, [])
        XCTAssertFalse(r2.4, "an empty blob is not NULL")
        XCTAssertEqual(r2.6, "blob")
        XCTAssertEqual(r2.2, "")
        XCTAssertFalse(r2.5, "an empty string is not NULL")
        let r3 = try fetch(3)
        XCTAssertTrue(r3.3 && r3.4 && r3.5)
        XCTAssertEqual(r3.1, [])
        XCTAssertEqual(r3.2, "")
        let r4 = try fetch(4)
        XCTAssertEqual(r4.1.count, 4096)
        XCTAssertTrue(r4.1.allSatisfy { $0 == 0 })
        XCTAssertEqual(r4.2, "a\u{0}b")

        // A blob parameter is looked up by value, zero bytes included.
        let byBlob = try db.prepare("SELECT id FROM v WHERE b = ?")
        var found: [Int64] = []
        try byBlob.forEachRow([.blob(zeroes)]) { found.append($0.int64(0)) }
        XCTAssertEqual(found, [1])
    }

    func testBlobBindingCopiesTheBytes() throws {
        let db = try SQLiteDatabase(path: ":memory:")
        try db.execute("CREATE TABLE b(x BLOB)")
        let insert = try db.prepare("INSERT INTO b VALUES (?)")
        var bytes = [UInt8](repeating: 7, count: 1000)
        try insert.bind([.blob(bytes)])
        // `bytes` is uniquely referenced again, so this overwrites the very buffer that was bound.
        bytes.withUnsafeMutableBufferPointer { $0.update(repeating: 9) }
        XCTAssertEqual(bytes.first, 9)
        try insert.step()
        let select = try db.prepare("SELECT x FROM b")
        XCTAssertTrue(try select.step())
        XCTAssertEqual(select.blob(0), [UInt8](repeating: 7, count: 1000))
    }

    func testBindByIndexAndParameterCountCheck() throws {
        let db = try SQLiteDatabase(path: ":memory:")
        let select = try db.prepare("SELECT ?1 + ?2, ?3")
        try select.bind(1, .integer(40))
        try select.bind(2, .integer(2))
        try select.bind(3, .text("x"))
        XCTAssertTrue(try select.step())
        XCTAssertEqual(select.int64(0), 42)
        XCTAssertEqual(select.text(1), "x")
        select.reset()
        XCTAssertTrue(try select.step())
        XCTAssertTrue(select.isNull(0), "reset clears bindings")
        XCTAssertThrowsError(try select.bind([.integer(1)])) { XCTAssertTrue($0 is SQLiteError) }
        XCTAssertThrowsError(try select.bind(4, .integer(1))) { XCTAssertEqual(($0 as? SQLiteError)?.code, 25) }
    }

    func testTransactionCommitsAndRollsBackOnThrow() throws {
        struct Boom: Error {}
        let db = try SQLiteDatabase(path: dbPath())
        try db.execute("CREATE TABLE t(x INTEGER)")
        let insert = try db.prepare("INSERT INTO t VALUES (?)")
        let value = try db.transaction { () throws -> String in
            try insert.bind([.integer(1)])
            try insert.step()
            return "done"
        }
        XCTAssertEqual(value, "done")
        XCTAssertEqual(try count(db, "t"), 1)

        XCTAssertThrowsError(try db.transaction {
            for i in 2...5 {
                try insert.bind([.integer(Int64(i))])
                try insert.step()
            }
            throw Boom()
        }) { XCTAssertTrue($0 is Boom, "the body's error is rethrown") }
        XCTAssertEqual(try count(db, "t"), 1)

        // A failing statement inside the body also rolls back everything the body did.
        try db.execute("CREATE TABLE u(x INTEGER UNIQUE)")
        let insertU = try db.prepare("INSERT INTO u VALUES (?)")
        XCTAssertThrowsError(try db.transaction {
            for i in [1, 2, 2] {
                try insertU.bind([.integer(Int64(i))])
                try insertU.step()
            }
        }) { XCTAssertEqual(($0 as? SQLiteError)?.code, 19, "SQLITE_CONSTRAINT") }
        XCTAssertEqual(try count(db, "u"), 0)

        // The connection is usable for new transactions afterwards.
        try db.transaction { try db.execute("INSERT INTO u VALUES (7)") }
        XCTAssertEqual(try count(db, "u"), 1)
    }

    func testTwoConnectionsSeeEachOthersCommittedRows() throws {
        let path = dbPath()
        let a = try SQLiteDatabase(path: path)
        let b = try SQLiteDatabase(path: path)
        try a.execute("CREATE TABLE t(x INTEGER)")
        try a.execute("INSERT INTO t VALUES (1)")
        XCTAssertEqual(try count(b, "t"), 1)
        try b.transaction {
            try b.execute("INSERT INTO t VALUES (2)")
            try b.execute("INSERT INTO t VALUES (3)")
        }
        XCTAssertEqual(try count(a, "t"), 3)

        // WAL: a reader keeps its snapshot while the other connection commits.
        let reader = try a.prepare("SELECT x FROM t ORDER BY x")
        XCTAssertTrue(try reader.step())
        try b.execute("INSERT INTO t VALUES (4)")
        var seen: [Int64] = [reader.int64(0)]
        while try reader.step() { seen.append(reader.int64(0)) }
        XCTAssertEqual(seen, [1, 2, 3])
        XCTAssertEqual(try count(a, "t"), 4)
    }

    func testReadOnlyConnection() throws {
        let path = dbPath()
        let writer = try SQLiteDatabase(path: path)
        try writer.execute("CREATE TABLE t(x INTEGER); INSERT INTO t VALUES (5);")
        let reader = try SQLiteDatabase(path: path, readOnly: true)
        XCTAssertEqual(try count(reader, "t"), 1)
        XCTAssertThrowsError(try reader.execute("INSERT INTO t VALUES (6)")) { error in
            XCTAssertEqual((error as? SQLiteError)?.code, 8, "SQLITE_READONLY")
        }
        try writer.execute("INSERT INTO t VALUES (7)")
        XCTAssertEqual(try count(reader, "t"), 2)
    }

    func testSyntaxErrorCarriesMessageAndSQL() throws {
        let db = try SQLiteDatabase(path: dbPath())
        XCTAssertThrowsError(try db.prepare("SELEC 1")) { error in
            guard let error = error as? SQLiteError else { return XCTFail("not an SQLiteError: \(error)") }
            XCTAssertEqual(error.code, 1)
            XCTAssertTrue(error.message.contains("syntax error"), error.message)
            XCTAssertEqual(error.sql, "SELEC 1")
            XCTAssertTrue(error.description.contains("SELEC 1"))
        }
        XCTAssertThrowsError(try db.execute("CREATE TABLE ok(x); CREATE TABEL broken(x);")) { error in
            guard let error = error as? SQLiteError else { return XCTFail("not an SQLiteError: \(error)") }
            XCTAssertTrue(error.message.contains("syntax error"), error.message)
            XCTAssertEqual(error.sql, "CREATE TABLE ok(x); CREATE TABEL broken(x);")
        }
        XCTAssertThrowsError(try db.prepare("SELECT * FROM missing")) { error in
            XCTAssertTrue((error as? SQLiteError)?.message.contains("no such table") ?? false)
        }
    }

    func testPrepareTakesExactlyOneStatement() throws {
        let db = try SQLiteDatabase(path: ":memory:")
        XCTAssertThrowsError(try db.prepare("SELECT 1; SELECT 2"))
        XCTAssertThrowsError(try db.prepare(""))
        XCTAssertThrowsError(try db.prepare("-- just a comment"))
        let withTrailer = try db.prepare("SELECT 3; -- trailing comment\n  ")
        XCTAssertTrue(try withTrailer.step())
        XCTAssertEqual(withTrailer.int64(0), 3)
    }

    func testForEachRowResetsEvenWhenBodyThrows() throws {
        struct Stop: Error {}
        let db = try SQLiteDatabase(path: ":memory:")
        try db.execute("CREATE TABLE t(x INTEGER); INSERT INTO t VALUES (1), (2), (3);")
        let select = try db.prepare("SELECT x FROM t WHERE x >= ? ORDER BY x")
        var values: [Int64] = []
        try select.forEachRow([.integer(2)]) { values.append($0.int64(0)) }
        XCTAssertEqual(values, [2, 3])
        XCTAssertThrowsError(try select.forEachRow([.integer(1)]) { _ in throw Stop() }) { XCTAssertTrue($0 is Stop) }
        values = []
        try select.forEachRow([.integer(1)]) { values.append($0.int64(0)) }
        XCTAssertEqual(values, [1, 2, 3])
    }

    func testStatementKeepsDatabaseAlive() throws {
        var db: SQLiteDatabase? = try SQLiteDatabase(path: ":memory:")
        try db!.execute("CREATE TABLE t(x); INSERT INTO t VALUES (42);")
        let statement = try db!.prepare("SELECT x FROM t")
        db = nil
        XCTAssertTrue(try statement.step())
        XCTAssertEqual(statement.int64(0), 42)
    }

    func testSharedConnectionFromSeveralThreads() throws {
        let db = try SQLiteDatabase(path: dbPath())
        try db.execute("CREATE TABLE t(thread INTEGER, n INTEGER)")
        let failures = LockedCounter()
        DispatchQueue.concurrentPerform(iterations: 4) { thread in
            do {
                let insert = try db.prepare("INSERT INTO t VALUES (?, ?)")
                for n in 0..<200 {
                    try insert.bind([.integer(Int64(thread)), .integer(Int64(n))])
                    try insert.step()
                }
            } catch {
                failures.increment()
            }
        }
        XCTAssertEqual(failures.value, 0)
        XCTAssertEqual(try count(db, "t"), 800)
    }
}

private final class LockedCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func increment() { lock.lock(); count += 1; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return count }
}
