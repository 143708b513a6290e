import XCTest
@testable import Store
@testable import FS

final class SnapshotNamespaceTests: XCTestCase {
    func record(_ id: String, _ time: String, host: String = "web1", tags: [String] = []) -> SnapshotRecord {
        SnapshotRecord(id: id, snapshot: Snapshot(time: time, host: host, username: "root", tags: tags, paths: ["/etc"],
                                                  tree: String(repeating: "0", count: 64), partial: false, errorCount: 0,
                                                  program: "test", summary: nil))
    }

    func testTimeNamesCollisionsHostsTagsAndShortIDs() {
        let a = String(repeating: "a", count: 64)
        let b = "aaaaaaaab" + String(repeating: "0", count: 55)      // shares 8 digits with a
        let c = "c" + String(repeating: "1", count: 63)
        let ns = SnapshotNamespace([
            record(c, "2026-11-21T02:00:00.000000001Z", host: "db/1", tags: ["weekly"]),
            record(a, "2026-11-20T02:00:00.5Z", tags: ["nightly"]),
            record(b, "2026-11-20T02:00:00.7Z", tags: ["nightly", "nightly"]),
        ])
        XCTAssertEqual(ns.all.map(\.name), ["2026-11-20T02:00:00Z", "2026-11-20T02:00:00Z-1", "2026-11-21T02:00:00Z"])
        XCTAssertEqual(ns.all.map(\.snapshotID), [a, b, c])
        XCTAssertEqual(Set(ns.byHost.keys), ["web1", "db_1"])
        XCTAssertEqual(ns.byHost["web1"]?.map(\.name), ["2026-11-20T02:00:00Z", "2026-11-20T02:00:00Z-1"])
        XCTAssertEqual(ns.byTag["nightly"]?.count, 2)
        XCTAssertEqual(ns.byTag["weekly"]?.map(\.snapshotID), [c])
        let short = Dictionary(uniqueKeysWithValues: ns.byID.map { ($0.snapshotID, $0.name) })
        XCTAssertEqual(short[c], "c1111111")
        XCTAssertEqual(short[a], "aaaaaaaaa")
        XCTAssertEqual(short[b], "aaaaaaaab")
        XCTAssertEqual(SnapshotNamespace.safeName(".."), "_..")
        XCTAssertEqual(SnapshotNamespace.safeName(""), "_")
    }

    func testTenThousandSnapshotsAreNamedUniquely() {
        var records: [SnapshotRecord] = []
        for i in 0..<10_000 {
            let id = String(format: "%016x", UInt64(i) &* 0x9E3779B97F4A7C15) + String(repeating: "0", count: 48)
            records.append(record(id, "2026-11-20T02:00:00Z"))
        }
        let ns = SnapshotNamespace(records)
        XCTAssertEqual(Set(ns.all.map(\.name)).count, 10_000)
        XCTAssertEqual(Set(ns.byID.map(\.name)).count, 10_000)
    }
}
