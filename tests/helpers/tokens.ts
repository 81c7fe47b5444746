/** Type tokens in one place (they change between provider versions). */
export const T = {
    stack: "pulumi:pulumi:Stack",
    cluster: "etcd-ha:index:EtcdCluster",
    member: "etcd-ha:index:EtcdMember",
    pki: "etcd-ha:index:EtcdPki",
    privateKey: "tls:index/privateKey:PrivateKey",
    selfSignedCert: "tls:index/selfSignedCert:SelfSignedCert",
    certRequest: "tls:index/certRequest:CertRequest",
    locallySignedCert: "tls:index/locallySignedCert:LocallySignedCert",
    randomString: "random:index/randomString:RandomString",
    command: "command:remote:Command",
    copyToRemote: "command:remote:CopyToRemote",
    proxmoxHosts: "etcd-ha:index:ProxmoxHosts",
    etcdVm: "etcd-ha:index:EtcdVm",
    linuxBridge: "etcd-ha:index:LinuxBridge",
    pveProvider: "pulumi:providers:proxmoxve",
    bridge: "proxmoxve:network/linux/bridge:Bridge",
    image: "proxmoxve:download/file:File",
    snippet: "proxmoxve:index/fileLegacy:FileLegacy",
    vm: "proxmoxve:index/vmLegacy:VmLegacy",
    fwOptions: "proxmoxve:firewall/optionsLegacy:OptionsLegacy",
    fwRules: "proxmoxve:firewall/rulesLegacy:RulesLegacy",
    haResource: "proxmoxve:index/haresource:Haresource",
    haRule: "proxmoxve:index/harule:Harule",
    haGroup: "proxmoxve:index/hagroup:Hagroup",
} as const;

/** The wrapper the SDK puts around secret values it sends to the engine (and so to mocks): SECRET_SIG: SECRET_VALUE. */
export const SECRET_SIG = "4dabf18193072939515e22adb298388d";
export const SECRET_VALUE = "1b47061264138c4ac30d75fd1eb44270";

/** True when a recorded input is a secret wrapper. */
export function isSecretInput(v: unknown): v is { value: unknown } {
    return typeof v === "object" && v !== null && (v as Record<string, unknown>)[SECRET_SIG] === SECRET_VALUE;
}

/** A recorded input's value, unwrapping a secret. */
export function plain(v: unknown): unknown {
    return isSecretInput(v) ? v.value : v;
}

/** A PEM-shaped placeholder (not key material) for tests that only move text around. */
export function fakePem(label: string, body: string): string {
    return `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`;
}

/** Matches a whole PEM block with this label (built at run time: no key-like literals in the tree). */
export function pemBlock(label: string): RegExp {
    return new RegExp(`^-----BEGIN ${label}-----\\n[\\s\\S]+\\n-----END ${label}-----\\n$`);
}

/** Matches text that starts with a PEM header with this label. */
export function pemStart(label: string): RegExp {
    return new RegExp(`^-----BEGIN ${label}-----\\n`);
}
