/**
 * The etcd certificate set as data, the way kubeadm lists its certificates (certlist.go): one row per
 * certificate with its subject, SANs, usages and where it lives. The EtcdPki component turns each row into
 * @pulumi/tls resources; the member scripts install the rows marked for members. Pure: no Pulumi imports.
 */

import { isIPv4, isIPv6 } from "../net/ip";

/** Key usages and extended key usages, spelled exactly as @pulumi/tls `allowedUses` accepts them. */
export const USES = {
    server: ["digital_signature", "key_encipherment", "server_auth", "client_auth"],
    client: ["digital_signature", "key_encipherment", "client_auth"],
    ca: ["cert_signing", "crl_signing", "digital_signature"],
} as const;

/** Directory on every member that holds the etcd CA certificate and the member's keys and certificates. */
export const PKI_DIR = "/etc/etcd/pki";

/** What a certificate is for. */
export type CertKind = "server" | "peer" | "client";

/** One certificate. */
export interface CertSpec {
    /** Unique id, used in resource names (`etcd1-server`, `apiserver-etcd-client`). */
    id: string;
    kind: CertKind;
    /** The member a per-member certificate belongs to. */
    member?: string;
    commonName: string;
    /** Subject O (e.g. `system:masters` for Kubernetes clients). */
    organization?: string;
    /** DNS SANs. */
    dnsNames: string[];
    /** IP SANs. */
    ipAddresses: string[];
    /** @pulumi/tls allowedUses. */
    allowedUses: string[];
    /**
     * Base file name on members (`server` gives `server.crt` and `server.key` under PKI_DIR), or undefined
     * when the certificate is not installed on members (it is exported for its consumer instead).
     */
    memberFile?: string;
    /** Who uses it. */
    purpose: string;
}

/** The member facts the certificate table needs. */
export interface CertMember {
    name: string;
    fqdn: string;
    address: string;
}

/** Options of the table. */
export interface CertTableOptions {
    /** Extra SANs on every server certificate (a load-balancer name or VIP); IPs go to IP SANs. */
    serverCertSans?: string[];
    /** Extra SANs on every peer certificate. */
    peerCertSans?: string[];
}

/** CN of the etcd CA (kubeadm's `etcd/ca`). */
export const CA_COMMON_NAME = "etcd-ca";
/** Fixed client certificate rows (kubeadm names and subjects; `etcd-admin` is the etcdctl identity). */
export const CLIENT_CERTS = {
    apiserver: { id: "apiserver-etcd-client", commonName: "kube-apiserver-etcd-client", purpose: "kube-apiserver --etcd-certfile/--etcd-keyfile" },
    healthcheck: { id: "healthcheck-client", commonName: "kube-etcd-healthcheck-client", purpose: "health checks (the cluster health gate, probes)" },
    admin: { id: "admin", commonName: "etcd-admin", purpose: "etcdctl for operators (/etc/etcd/etcdctl.env, exported for the operator's machine)" },
} as const;

/** True for an IPv4 or IPv6 literal. */
export function isIpLiteral(s: string): boolean {
    return isIPv4(s) || isIPv6(s);
}

function uniq(items: string[]): string[] {
    return [...new Set(items)];
}

function splitSans(sans: string[] | undefined): { dns: string[]; ips: string[] } {
    const all = sans ?? [];
    return { dns: all.filter((s) => !isIpLiteral(s)), ips: all.filter(isIpLiteral) };
}

/**
 * The whole certificate set for a cluster, members first (server, peer), then the client certificates.
 * Server certs carry the member name, FQDN and IP plus `localhost`, `127.0.0.1` and `::1` (a co-located
 * kube-apiserver and local etcdctl dial loopback); peer certs carry only the member's own names and IP, as
 * etcd matches the dialling peer's address against them.
 */
export function etcdCertTable(members: readonly CertMember[], opts: CertTableOptions = {}): CertSpec[] {
    const server = splitSans(opts.serverCertSans);
    const peer = splitSans(opts.peerCertSans);
    const rows: CertSpec[] = [];
    for (const m of members) {
        rows.push({
            id: `${m.name}-server`,
            kind: "server",
            member: m.name,
            commonName: m.name,
            dnsNames: uniq([m.name, m.fqdn, "localhost", ...server.dns]),
            ipAddresses: uniq([m.address, "127.0.0.1", "::1", ...server.ips]),
            allowedUses: [...USES.server],
            memberFile: "server",
            purpose: "client-facing TLS (--cert-file/--key-file)",
        });
        rows.push({
            id: `${m.name}-peer`,
            kind: "peer",
            member: m.name,
            commonName: m.name,
            dnsNames: uniq([m.name, m.fqdn, ...peer.dns]),
            ipAddresses: uniq([m.address, ...peer.ips]),
            allowedUses: [...USES.server],
            memberFile: "peer",
            purpose: "member-to-member TLS (--peer-cert-file/--peer-key-file)",
        });
    }
    const client = (c: { id: string; commonName: string; purpose: string }, memberFile?: string): CertSpec => ({
        id: c.id,
        kind: "client",
        commonName: c.commonName,
        organization: "system:masters",
        dnsNames: [],
        ipAddresses: [],
        allowedUses: [...USES.client],
        ...(memberFile ? { memberFile } : {}),
        purpose: c.purpose,
    });
    rows.push(client(CLIENT_CERTS.apiserver));
    rows.push(client(CLIENT_CERTS.healthcheck, "healthcheck-client"));
    rows.push(client(CLIENT_CERTS.admin, "admin"));
    return rows;
}

/** The certificates installed on one member: its own server and peer certs and the shared client certs. */
export function memberCerts(table: readonly CertSpec[], member: string): CertSpec[] {
    return table.filter((c) => c.memberFile !== undefined && (c.member === undefined || c.member === member));
}

/** Every file installed on a member, with its mode: the CA cert, then `<file>.crt` (0644) and `<file>.key` (0600). */
export function memberFiles(table: readonly CertSpec[], member: string): { name: string; mode: "0644" | "0600"; certId?: string; part: "ca" | "cert" | "key" }[] {
    const out: { name: string; mode: "0644" | "0600"; certId?: string; part: "ca" | "cert" | "key" }[] = [{ name: "ca.crt", mode: "0644", part: "ca" }];
    for (const c of memberCerts(table, member)) {
        out.push({ name: `${c.memberFile}.crt`, mode: "0644", certId: c.id, part: "cert" });
        out.push({ name: `${c.memberFile}.key`, mode: "0600", certId: c.id, part: "key" });
    }
    return out;
}
