/**
 * The shape every etcd host has, whether it is a Proxmox VM this program creates or an existing machine
 * from `etcd-ha:hosts`. The etcd layer only ever sees this shape.
 */
import * as pulumi from "@pulumi/pulumi";

/** How remote commands reach a host over SSH. */
export interface SshConnection {
    /** Address or name SSH connects to. */
    host: pulumi.Input<string>;
    /** SSH port. Default 22. */
    port?: pulumi.Input<number>;
    /** SSH user (root, or a user with passwordless sudo). */
    user: pulumi.Input<string>;
    /** Private key (PEM or OpenSSH format); pass a secret. */
    privateKey: pulumi.Input<string>;
    /**
     * The host's public SSH host key, one authorized_keys line (`ssh-ed25519 AAAA…`). Every remote command and
     * copy then accepts only this key: a machine that answers at the address with another key is refused
     * before anything is sent to it. Required unless the cluster sets `insecureIgnoreHostKeys` (Proxmox VMs
     * get a key the program generates).
     */
    hostKey?: pulumi.Input<string>;
}

/** The command provider's connection for a host: its address, port (default 22), user, key, and its pinned host key. */
export function sshConnectionArgs(c: SshConnection): { host: pulumi.Input<string>; port: pulumi.Input<number>; user: pulumi.Input<string>; privateKey: pulumi.Input<string>; hostKey?: pulumi.Input<string> } {
    return {
        host: c.host,
        port: c.port ?? 22,
        user: c.user,
        privateKey: c.privateKey,
        ...(c.hostKey !== undefined ? { hostKey: pulumi.output(c.hostKey).apply(normalizeHostKey) } : {}),
    };
}

/** An authorized_keys line reduced to `<type> <base64>` (comment and surrounding whitespace dropped). */
export function normalizeHostKey(line: string): string {
    return line.trim().split(/\s+/).slice(0, 2).join(" ");
}

/** One machine that runs (or will run) an etcd member. */
export interface EtcdHost {
    /** etcd member name; also the certificate CN. Must be unique in the cluster. */
    name: string;
    /** Fully-qualified name, put into the server and peer certificate SANs. */
    fqdn: string;
    /** IPv4 address etcd listens on and advertises (in the certificate SANs). */
    address: string;
    /** Failure domain (hypervisor) of this host, for fault-tolerance planning. Optional. */
    hypervisor?: string;
    /** Proxmox VM id when the host is a VM this program created. Optional. */
    vmId?: number;
    /** SSH connection for the remote commands that install and run etcd. */
    connection: SshConnection;
    /**
     * Resources that must finish before anything is installed on the host (a new VM's readiness check).
     * Optional: existing machines have none.
     */
    dependsOn?: pulumi.Resource[];
}
