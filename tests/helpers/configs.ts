/** Config fixtures for tests: raw `etcd-ha:*` values (structured, without namespace) and helpers. */
import { createHash } from "crypto";

export type Raw = Record<string, unknown>;

export const PUBKEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGt0aGlzaXNhbm9wZXJhdG9yc3B1YmxpY2tleWV4YW1wbGU admin@kloud.lan";
/** A well-formed image checksum (the tests never download). */
export const IMAGE_SHA256 = "6e40c07ae715f744f84af0bec76415cc1987dd115b4b8de437818561f01a3733";
export const ALL_SECRETS: ReadonlySet<string> = new Set(["proxmoxApiToken", "proxmoxSshPrivateKey", "sshPrivateKey"]);

/** A valid Proxmox-mode config: three nodes, three pinned members. */
export function proxmoxBase(): Raw {
    return {
        clusterName: "etcd",
        topology: "external",
        proxmox: { endpoint: "https://pve1.kloud.lan:8006/", insecure: true, image: { sha256: IMAGE_SHA256 } },
        hypervisors: ["pve1", "pve2", "pve3"].map((name, i) => ({
            name,
            bridge: { name: "vmbr10", address: `10.103.0.${11 + i}/24`, ports: ["eno2"] },
            datastores: { snippets: "local" },
        })),
        network: { cidr: "10.103.0.0/24", gateway: "10.103.0.1", dnsServers: ["10.103.0.1"], searchDomain: "kloud.lan" },
        members: [
            { name: "etcd1", hypervisor: "pve1", address: "10.103.0.101" },
            { name: "etcd2", hypervisor: "pve2", address: "10.103.0.102" },
            { name: "etcd3", hypervisor: "pve3", address: "10.103.0.103" },
        ],
        ssh: { user: "ubuntu", publicKey: PUBKEY },
    };
}

/**
 * A well-formed ed25519 public host key line for a test host (the wire format of a real key: the type string
 * and 32 key bytes, here derived from `seed`, so each host has its own).
 */
export function testHostKey(seed: string): string {
    const str = (b: Buffer) => Buffer.concat([Buffer.from([0, 0, 0, b.length]), b]);
    const blob = Buffer.concat([str(Buffer.from("ssh-ed25519")), str(createHash("sha256").update(seed).digest())]);
    return `ssh-ed25519 ${blob.toString("base64")} root@${seed}`;
}

/** A valid hosts-mode config: three existing machines on loopback addresses. */
export function hostsBase(): Raw {
    return {
        clusterName: "lab",
        hosts: [
            { name: "m1", address: "127.42.0.11", port: 2222, user: "admin", hostKey: testHostKey("m1") },
            { name: "m2", address: "127.42.0.12", port: 2222, user: "admin", hostKey: testHostKey("m2") },
            { name: "m3", address: "127.42.0.13", port: 2222, user: "admin", hostKey: testHostKey("m3") },
        ],
    };
}

/** Deep copy, then apply a mutation. */
export function mutate(base: Raw, f: (c: any) => void): Raw {
    const c = JSON.parse(JSON.stringify(base));
    f(c);
    return c;
}

/** Flat runtime config (`etcd-ha:key` → string) as Pulumi stores it, plus the secret key list. */
export function flatConfig(raw: Raw, secrets: ReadonlySet<string> = ALL_SECRETS): { config: Record<string, string>; secretKeys: string[] } {
    const config: Record<string, string> = {};
    for (const [k, v] of Object.entries(raw)) config[`etcd-ha:${k}`] = typeof v === "string" ? v : JSON.stringify(v);
    const secretKeys: string[] = [];
    for (const s of secrets) {
        config[`etcd-ha:${s}`] = "[secret]";
        secretKeys.push(`etcd-ha:${s}`);
    }
    return { config, secretKeys };
}
