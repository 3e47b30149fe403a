// smtp.mjs - a tiny SMTP client for the browser tests: enough to hand mailsink a few
// messages over a real socket (EHLO, MAIL, RCPT, DATA with dot-stuffing, QUIT), every
// reply checked, every wait bounded.

import net from 'node:net';

const TIMEOUT_MS = 10000;

class Conn {
    constructor(sock) {
        this.sock = sock;
        this.buf = '';
        this.waiters = [];
        this.error = null;
        sock.setEncoding('latin1');
        sock.on('data', (d) => {
            this.buf += d;
            this.wake();
        });
        sock.on('error', (e) => {
            this.error = e;
            this.wake();
        });
        sock.on('close', () => {
            this.error = this.error || new Error('connection closed');
            this.wake();
        });
    }

    wake() {
        const w = this.waiters;
        this.waiters = [];
        for (const f of w) f();
    }

    // One whole reply (multi-line "250-" ... "250 "): {code, text}.
    async reply() {
        const deadline = Date.now() + TIMEOUT_MS;
        for (;;) {
            const lines = this.buf.split('\r\n');
            for (let i = 0; i < lines.length - 1; i++) {
                if (/^\d{3} /.test(lines[i]) || /^\d{3}$/.test(lines[i])) {
                    const text = lines.slice(0, i + 1).join('\n');
                    this.buf = lines.slice(i + 1).join('\r\n');
                    return {code: Number(lines[i].slice(0, 3)), text};
                }
            }
            if (this.error) throw this.error;
            const left = deadline - Date.now();
            if (left <= 0) throw new Error(`SMTP: no reply within ${TIMEOUT_MS} ms`);
            await new Promise((resolve) => {
                const t = setTimeout(resolve, left);
                this.waiters.push(() => {
                    clearTimeout(t);
                    resolve();
                });
            });
        }
    }

    async cmd(line, want) {
        if (line !== null) this.sock.write(`${line}\r\n`, 'latin1');
        const r = await this.reply();
        if (Math.floor(r.code / 100) !== want) throw new Error(`SMTP: ${line} -> ${r.text}`);
        return r;
    }
}

function connect(host, port) {
    return new Promise((resolve, reject) => {
        const sock = net.connect({host, port});
        const t = setTimeout(() => {
            sock.destroy();
            reject(new Error('SMTP: connect timed out'));
        }, TIMEOUT_MS);
        sock.once('connect', () => {
            clearTimeout(t);
            resolve(sock);
        });
        sock.once('error', (e) => {
            clearTimeout(t);
            reject(e);
        });
    });
}

// Send messages ([{from, to: [..], data}]; data is the whole message, any line ends)
// in one session. Returns the 250 texts after DATA (they carry mailsink's ids).
export async function sendMail(addr, messages) {
    const [host, port] = splitAddr(addr);
    const sock = await connect(host, port);
    const c = new Conn(sock);
    const replies = [];
    try {
        await c.cmd(null, 2);
        await c.cmd('EHLO browser-test.example', 2);
        for (const m of messages) {
            await c.cmd(`MAIL FROM:<${m.from}>`, 2);
            for (const r of m.to) await c.cmd(`RCPT TO:<${r}>`, 2);
            await c.cmd('DATA', 3);
            const body = m.data
                .replace(/\r?\n/g, '\r\n')
                .replace(/^\./gm, '..')
                .replace(/(\r\n)?$/, '\r\n');
            sock.write(Buffer.from(body + '.\r\n', 'utf8'));
            replies.push((await c.cmd(null, 2)).text);
        }
        await c.cmd('QUIT', 2);
    } finally {
        sock.destroy();
    }
    return replies;
}

function splitAddr(addr) {
    const m = /^\[?([^\]]+)\]?:(\d+)$/.exec(addr);
    if (!m) throw new Error(`bad SMTP address ${addr}`);
    return [m[1], Number(m[2])];
}
