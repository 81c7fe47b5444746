/**
 * IPv4 helpers for the planner and the config schema, built on the `ip-address` library.
 * Pure: no Pulumi imports.
 */
import { Address4, Address6 } from "ip-address";

/** True when `s` is a dotted-quad IPv4 address without a prefix (e.g. `10.103.0.101`). */
export function isIPv4(s: string): boolean {
    return typeof s === "string" && !s.includes("/") && Address4.isValid(s);
}

/** True when `s` is an IPv6 address without a prefix (e.g. `::1`). */
export function isIPv6(s: string): boolean {
    return typeof s === "string" && !s.includes("/") && Address6.isValid(s);
}

/** True when `s` is `a.b.c.d/len` with 0 ≤ len ≤ 32 (host bits may be set, as in a bridge address). */
export function isCidr4(s: string): boolean {
    if (typeof s !== "string" || !/^[0-9.]+\/\d{1,2}$/.test(s)) return false;
    const [addr, len] = s.split("/");
    return Address4.isValid(addr) && Number(len) <= 32;
}

/** True when `s` is a CIDR whose host bits are all zero (`10.103.0.0/24`, not `10.103.0.5/24`). */
export function isNetworkCidr4(s: string): boolean {
    if (!isCidr4(s)) return false;
    const net = new Address4(s);
    return net.startAddress().address === s.split("/")[0];
}

/** The network address of a CIDR (`10.103.0.5/24` → `10.103.0.0/24`). */
export function networkOf(cidr: string): string {
    const net = new Address4(cidr);
    return `${net.startAddress().address}/${net.subnetMask}`;
}

/** True when the IPv4 address lies inside the CIDR. */
export function cidrContains(cidr: string, ip: string): boolean {
    return new Address4(ip).isInSubnet(new Address4(cidr));
}

/** Numeric value of an IPv4 address, for ordering and offsets. */
export function ipToInt(ip: string): bigint {
    return new Address4(ip).bigInt();
}

/** The IPv4 address with numeric value `n`. */
export function intToIp(n: bigint): string {
    return Address4.fromBigInt(n).address;
}

/** First and last address of a CIDR (network and broadcast address for prefixes ≤ 30). */
export function cidrBounds(cidr: string): { first: string; last: string; prefix: number } {
    const net = new Address4(cidr);
    return { first: net.startAddress().address, last: net.endAddress().address, prefix: net.subnetMask };
}

/** True for the network or broadcast address of a CIDR with prefix ≤ 30 (not usable by a host). */
export function isReservedInCidr(cidr: string, ip: string): boolean {
    const { first, last, prefix } = cidrBounds(cidr);
    return prefix <= 30 && (ip === first || ip === last);
}

/** Offset of `ip` from the network address of `cidr` (10.103.0.101 in 10.103.0.0/24 → 101). */
export function offsetInCidr(cidr: string, ip: string): number {
    return Number(ipToInt(ip) - ipToInt(cidrBounds(cidr).first));
}

/**
 * Parses an address range `"10.103.0.101-10.103.0.120"` (inclusive) or a CIDR (`"10.103.0.96/27"`,
 * usable addresses only). Returns undefined when the text is neither.
 */
export function parseRange(text: string): { start: string; end: string } | undefined {
    if (typeof text !== "string") return undefined;
    const dash = text.split("-").map((p) => p.trim());
    if (dash.length === 2 && isIPv4(dash[0]) && isIPv4(dash[1])) return { start: dash[0], end: dash[1] };
    if (isCidr4(text)) {
        const { first, last, prefix } = cidrBounds(text);
        if (prefix >= 31) return { start: first, end: last };
        return { start: intToIp(ipToInt(first) + 1n), end: intToIp(ipToInt(last) - 1n) };
    }
    return undefined;
}

/**
 * The first `count` addresses of the inclusive range, skipping any in `exclude` and any network or
 * broadcast address of `within`. Returns fewer than `count` when the range runs out.
 */
export function allocateFromRange(
    range: { start: string; end: string },
    count: number,
    exclude: ReadonlySet<string>,
    within?: string,
): string[] {
    const out: string[] = [];
    const end = ipToInt(range.end);
    for (let n = ipToInt(range.start); n <= end && out.length < count; n++) {
        const ip = intToIp(n);
        if (exclude.has(ip)) continue;
        if (within && isReservedInCidr(within, ip)) continue;
        out.push(ip);
    }
    return out;
}
