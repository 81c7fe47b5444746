/**
 * Network partitions between lab hosts. Every loopback connection has source address 127.0.0.1, so a
 * rule "drop 127.66.0.11 ↔ 127.66.0.12" cannot be written; what works (security-and-faults.md §8) is
 * matching on the member's own uid (each lab host's `etcd` user has a uid of its own) plus its address:
 *   1. its outgoing peer connections (owner = its uid, to a peer port in its lab's range) get a connection
 *      mark,
 *   2. everything on a marked connection is dropped, both ways (CONNMARK),
 *   3. connections to its peer port, and its answers from it, are dropped.
 * Client traffic (2379) and metrics (2381) are untouched, so clients still reach the isolated member and
 * see it refuse linearizable requests. The rules live in a chain of the lab's own (one per address range,
 * so labs side by side never touch each other's), jumped to from OUTPUT (loopback packets traverse OUTPUT
 * in both directions); `heal` flushes it, `removeChain` drops it.
 *
 * The uid alone does not name one member: host N of every lab gets the same system uid range, so a rule on
 * the uid alone would also cut host N of a lab running beside this one (seen in CI: `lab.test`'s partition of
 * its etcd1 cut `lab-upgrade`'s etcd1 off from its peers for the partition's 10 s, and the upgrade's writer
 * saw an election). Rule 1 therefore matches only destinations in the lab's own range.
 */
import { execFileSync, spawnSync } from "child_process";

/** The chain of the lab in the range `prefix` (127.x.y): `ETCD-HA-LAB-x-y`. */
export function chainOf(prefix: string): string {
    if (!/^127\.\d{1,3}\.\d{1,3}$/.test(prefix)) throw new Error(`a lab range is 127.x.y, got ${prefix}`);
    return `ETCD-HA-LAB-${prefix.split(".").slice(1).join("-")}`;
}

function ipt(args: string[]): void {
    execFileSync("iptables", ["-w", "5", ...args], { stdio: ["ignore", "ignore", "pipe"] });
}

function exists(args: string[]): boolean {
    return spawnSync("iptables", ["-w", "5", ...args], { stdio: "ignore" }).status === 0;
}

/** Creates the lab's chain and the OUTPUT jump to it (once). */
export function ensureChain(prefix: string): void {
    const chain = chainOf(prefix);
    if (!exists(["-L", chain, "-n"])) ipt(["-N", chain]);
    if (!exists(["-C", "OUTPUT", "-j", chain])) ipt(["-I", "OUTPUT", "1", "-j", chain]);
}

/**
 * The iptables rules (arguments after `-A <chain>`) that cut one member of the lab in `prefix` (127.x.y) off
 * from its peers, and nothing of any other lab.
 */
export function partitionRules(prefix: string, m: { uid: number; address: string; peerPort: number; mark: number }): string[][] {
    chainOf(prefix);
    if (!m.address.startsWith(`${prefix}.`)) throw new Error(`member address ${m.address} is not in the lab's range ${prefix}.0/24`);
    const mark = `0x${m.mark.toString(16)}`;
    const port = String(m.peerPort);
    return [
        ["-p", "tcp", "-d", `${prefix}.0/24`, "-m", "owner", "--uid-owner", String(m.uid), "--dport", port, "-j", "CONNMARK", "--set-mark", mark],
        ["-p", "tcp", "-m", "connmark", "--mark", mark, "-j", "DROP"],
        ["-p", "tcp", "-d", m.address, "--dport", port, "-j", "DROP"],
        ["-p", "tcp", "-s", m.address, "--sport", port, "-j", "DROP"],
    ];
}

/**
 * The connection mark of member `index` of the lab in `prefix` (127.x.y): 0xXXYYNN, so no two members of
 * labs side by side share one (every lab's chain sees every loopback packet, rule 2 included).
 */
export function partitionMark(prefix: string, index: number): number {
    chainOf(prefix);
    if (!Number.isInteger(index) || index < 0 || index > 254) throw new Error(`a member index is 0-254, got ${index}`);
    const [, x, y] = prefix.split(".").map(Number);
    return (x << 16) | (y << 8) | (index + 1);
}

/** Isolates one member of the lab in `prefix` from its peers (see the module comment). */
export function isolate(prefix: string, m: { uid: number; address: string; peerPort: number; index: number }): void {
    ensureChain(prefix);
    for (const r of partitionRules(prefix, { ...m, mark: partitionMark(prefix, m.index) })) ipt(["-A", chainOf(prefix), ...r]);
}

/** Lifts every partition of the lab in `prefix`. */
export function heal(prefix: string): void {
    if (exists(["-L", chainOf(prefix), "-n"])) ipt(["-F", chainOf(prefix)]);
}

/** Removes the lab's chain and its jump (lab down). */
export function removeChain(prefix: string): void {
    const chain = chainOf(prefix);
    for (let i = 0; i < 10 && exists(["-C", "OUTPUT", "-j", chain]); i++) ipt(["-D", "OUTPUT", "-j", chain]);
    if (exists(["-L", chain, "-n"])) {
        ipt(["-F", chain]);
        ipt(["-X", chain]);
    }
}
