import Glibc

/// A UTC wall-clock time with nanoseconds, formatted RFC 3339 ("2026-11-20T02:00:00.123456789Z").
public struct Timestamp: Comparable, Sendable, Hashable {
    public var seconds: Int64
    public var nanoseconds: Int32

    public init(seconds: Int64, nanoseconds: Int32) {
        self.seconds = seconds
        self.nanoseconds = nanoseconds
    }

    public static func now() -> Timestamp {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Timestamp(seconds: Int64(ts.tv_sec), nanoseconds: Int32(ts.tv_nsec))
    }

    public static func < (a: Timestamp, b: Timestamp) -> Bool {
        (a.seconds, a.nanoseconds) < (b.seconds, b.nanoseconds)
    }

    private var broken: tm {
        var t = time_t(seconds)
        var out = tm()
        gmtime_r(&t, &out)
        return out
    }

    /// Full precision: "2026-11-20T02:00:00.123456789Z".
    public var rfc3339: String {
        let t = broken
        return pad4(Int(t.tm_year) + 1900) + "-" + pad(t.tm_mon + 1) + "-" + pad(t.tm_mday) + "T" +
            pad(t.tm_hour) + ":" + pad(t.tm_min) + ":" + pad(t.tm_sec) + "." + pad9(nanoseconds) + "Z"
    }
    /// Second precision: "2026-11-20T02:00:00Z" (mount directory names).
    public var rfc3339Seconds: String {
        let t = broken
        return pad4(Int(t.tm_year) + 1900) + "-" + pad(t.tm_mon + 1) + "-" + pad(t.tm_mday) + "T" +
            pad(t.tm_hour) + ":" + pad(t.tm_min) + ":" + pad(t.tm_sec) + "Z"
    }
    /// For tables: "2026-11-20 02:00:00".
    public var display: String {
        let t = broken
        return pad4(Int(t.tm_year) + 1900) + "-" + pad(t.tm_mon + 1) + "-" + pad(t.tm_mday) + " " +
            pad(t.tm_hour) + ":" + pad(t.tm_min) + ":" + pad(t.tm_sec)
    }

    /// Parses what `rfc3339` / `rfc3339Seconds` produce.
    public init?(rfc3339 s: String) {
        let u = Array(s.utf8)
        guard u.count >= 20, u.last == UInt8(ascii: "Z") else { return nil }
        func num(_ r: Range<Int>) -> Int? {
            var v = 0
            for i in r { guard (48...57).contains(u[i]) else { return nil }; v = v * 10 + Int(u[i] - 48) }
            return v
        }
        guard u[4] == UInt8(ascii: "-"), u[7] == UInt8(ascii: "-"), u[10] == UInt8(ascii: "T"),
              u[13] == UInt8(ascii: ":"), u[16] == UInt8(ascii: ":") else { return nil }
        guard let y = num(0..<4), let mo = num(5..<7), let d = num(8..<10),
              let h = num(11..<13), let mi = num(14..<16), let se = num(17..<19),
              (1...12).contains(mo), (1...31).contains(d), h < 24, mi < 60, se < 61 else { return nil }
        var ns = 0
        if u.count == 20 {
            // "…:SSZ"
        } else if u[19] == UInt8(ascii: ".") {
            let digits = u.count - 21
            guard digits > 0, digits <= 9, let f = num(20..<(u.count - 1)) else { return nil }
            ns = f
            for _ in digits..<9 { ns *= 10 }
        } else {
            return nil
        }
        var t = tm()
        t.tm_year = Int32(y - 1900); t.tm_mon = Int32(mo - 1); t.tm_mday = Int32(d)
        t.tm_hour = Int32(h); t.tm_min = Int32(mi); t.tm_sec = Int32(se)
        self.seconds = Int64(timegm(&t))
        self.nanoseconds = Int32(ns)
    }

    private func pad(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
    private func pad9(_ v: Int32) -> String {
        let s = String(v)
        return String(repeating: "0", count: 9 - s.count) + s
    }
}

private func pad4(_ v: Int) -> String {
    let s = "\(v)"
    return String(repeating: "0", count: Swift.max(0, 4 - s.count)) + s
}
