import Glibc

public enum SystemInfo {
    public static var hostname: String {
        var buf = [CChar](repeating: 0, count: 256)
        guard gethostname(&buf, buf.count - 1) == 0 else { return "localhost" }
        return String(cString: buf)
    }
    public static var username: String { Posix.userName(geteuid()) ?? String(geteuid()) }
    public static var isRoot: Bool { geteuid() == 0 }
}
