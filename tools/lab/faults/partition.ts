/**
 * Network partitions between lab hosts. Every loopback connection has source address 127.0.0.1, so a
 * rule "drop 127.66.0.11 ↔ 127.66.0.12" cannot be written; what works (security-and-faults.md §8) is
 * matching on the member's own uid (each lab host's `etcd` user has a uid of its own) plus its address:
 *   1. its outgoing peer connections (owner = its uid, to a peer port) get a connection mark,
 *   2. everything on a marked connection is dropped, both ways (CONNMARK),
 *   3. connections to its peer port, and its answers from it, are dropped.
 * Client traffic (2379) and metrics (2381) are untouched, so clients still reach the isolated member and
 * see it refuse linearizable requests. The rules live in a chain of the lab's own, jumped to from
 * OUTPUT (loopback packets traverse OUTPUT in both directions); `heal` flushes it, `removeChain` drops it.
 */
import { execFileSync, spawnSync } from "child_process";

export const CHAIN = "ETCD-HA-LAB";

function ipt(args: string[]): void {
    execFileSync("iptables", ["-w", "5", ...args], { stdio: ["ignore", "ignore", "pipe"] });
}

function exists(args: string[]): boolean {
    return spawnSync("iptables", ["-w", "5", ...args], { stdio: "ignore" }).status === 0;
}

/** Creates the lab chain and the OUTPUT jump to it (once). */
export function ensureChain(): void {
    if (!exists(["-L", CHAIN, "-n"])) ipt(["-N", CHAIN]);
    if (!exists(["-C", "OUTPUT", "-j", CHAIN])) ipt(["-I", "OUTPUT", "1", "-j", CHAIN]);
}

/** The iptables rules (arguments after `-A <chain>`) that cut one member off from its peers. */
export function partitionRules(m: { uid: number; address: string; peerPort: number; mark: number }): string[][] {
    const mark = `0x${m.mark.toString(16)}`;
    const port = String(m.peerPort);
    return [
        ["-p", "tcp", "-m", "owner", "--uid-owner", String(m.uid), "--dport", port, "-j", "CONNMARK", "--set-mark", mark],
        ["-p", "tcp", "-m", "connmark", "--mark", mark, "-j", "DROP"],
        ["-p", "tcp", "-d", m.address, "--dport", port, "-j", "DROP"],
        ["-p", "tcp", "-s", m.address, "--sport", port, "-j", "DROP"],
    ];
}

/** Isolates one member from its peers (see the module comment). */
export function isolate(m: { uid: number; address: string; peerPort: number; index: number }): void {
    ensureChain();
    for (const r of partitionRules({ ...m, mark: 0x6600 + m.index + 1 })) ipt(["-A", CHAIN, ...r]);
}

/** Lifts every partition. */
export function heal(): void {
    if (exists(["-L", CHAIN, "-n"])) ipt(["-F", CHAIN]);
}

/** Removes the chain and its jump (lab down). */
export function removeChain(): void {
    for (let i = 0; i < 10 && exists(["-C", "OUTPUT", "-j", CHAIN]); i++) ipt(["-D", "OUTPUT", "-j", CHAIN]);
    if (exists(["-L", CHAIN, "-n"])) {
        ipt(["-F", CHAIN]);
        ipt(["-X", CHAIN]);
    }
}
