import * as http from "http";

/** A bounded plain-HTTP GET (no keep-alive agent, so jest sees no open handle): status and body. */
export function httpGet(url: string, timeoutMs = 5000): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
        const req = http.get(url, { agent: false, timeout: timeoutMs }, (res) => {
            let body = "";
            res.on("data", (d: Buffer) => (body += d.toString()));
            res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
        });
        req.on("timeout", () => req.destroy(new Error("timeout")));
        req.on("error", reject);
    });
}
