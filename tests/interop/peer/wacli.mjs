// wacli.mjs - a `wa-cli listen` process for interop tests: JSON events on stdout (waited for by
// predicate, consumed once), commands on stdin, stderr to a log file.
// SPDX-License-Identifier: GPL-3.0-or-later
import { spawn } from 'child_process';
import fs from 'fs';
import path from 'path';
import readline from 'readline';

import { assert } from './lib.mjs';

export class WaCli {
    /**
     * name: label in logs and errors; store: the libwa store file; opts: { bin (wa-cli),
     * connect: () => ({ url, root }) (read at each start), dir (stderr goes to dir/NAME.log),
     * args (extra options before `listen`), waitMs (default wait of next()), verbose }.
     */
    constructor(name, store, opts) {
        this.name = name;
        this.store = store;
        this.opts = opts;
        this.events = [];
        this.waiters = [];
        this.ended = false;
    }

    start(extra = []) {
        const { url, root } = this.opts.connect();
        const args = ['--store', this.store, '--url', url, '--root-key', root, '--log-level',
            'info', ...(this.opts.args || []), ...extra, 'listen'];
        this.proc = spawn(this.opts.bin, args, { stdio: ['pipe', 'pipe', 'pipe'] });
        this.ended = false;
        this.exited = new Promise(resolve => this.proc.on('exit', (code, signal) => {
            this.ended = true;
            this.flush();
            resolve({ code, signal });
        }));
        readline.createInterface({ input: this.proc.stdout }).on('line', line => {
            if (this.opts.verbose) process.stderr.write(`[${this.name}] ${line}\n`);
            let ev;
            try {
                ev = JSON.parse(line);
            } catch {
                return;
            }
            this.events.push(ev);
            this.flush();
        });
        const log = fs.createWriteStream(path.join(this.opts.dir, `${this.name}.log`), { flags: 'a' });
        this.proc.stderr.on('data', d => {
            log.write(d);
            if (this.opts.verbose) process.stderr.write(`[${this.name}:err] ${d}`);
        });
        this.proc.stdin.on('error', () => {});
        return this;
    }

    flush() {
        for (const w of [...this.waiters]) {
            const i = this.events.findIndex(w.pred);
            if (i >= 0) {
                const [ev] = this.events.splice(i, 1);
                this.waiters.splice(this.waiters.indexOf(w), 1);
                clearTimeout(w.timer);
                w.resolve(ev);
            } else if (this.ended) {
                this.waiters.splice(this.waiters.indexOf(w), 1);
                clearTimeout(w.timer);
                w.reject(new Error(`${this.name} exited while waiting for ${w.what}`));
            }
        }
    }

    /** The oldest unconsumed event matching pred (a function or a field pattern). */
    next(pred, ms = this.opts.waitMs || 20000) {
        const fn = typeof pred === 'function' ? pred
            : e => Object.entries(pred).every(([k, v]) => (v instanceof RegExp ? v.test(e[k]) : e[k] === v));
        const what = typeof pred === 'function' ? 'a matching event' : JSON.stringify(pred);
        return new Promise((resolve, reject) => {
            const w = { pred: fn, resolve, reject, what };
            w.timer = setTimeout(() => {
                this.waiters.splice(this.waiters.indexOf(w), 1);
                reject(new Error(`${this.name}: no ${what} within ${ms} ms`));
            }, ms);
            this.waiters.push(w);
            this.flush();
        });
    }

    /** No event matching pred arrives within ms. */
    async none(pred, ms) {
        try {
            const ev = await this.next(pred, ms);
            throw new Error(`${this.name}: unexpected ${JSON.stringify(ev)}`);
        } catch (e) {
            if (/unexpected/.test(e.message)) throw e;
        }
    }

    count(pred) {
        return this.events.filter(pred).length;
    }

    /** Forget the unconsumed events matching pred. */
    drop(pred) {
        this.events = this.events.filter(e => !pred(e));
    }

    cmd(line) {
        this.proc.stdin.write(`${line}\n`);
    }

    /** A command that answers with one event (or an error event). */
    async ok(line, event) {
        this.cmd(line);
        const r = await this.next(e => e.event === event || e.event === 'error');
        assert.equal(r.event, event, `${this.name}: ${line} -> ${JSON.stringify(r)}`);
        return r;
    }

    /** A send command: resolves with the id once the server acknowledged it. */
    async send(line) {
        this.cmd(line);
        const q = await this.next(e => e.event === 'queued' || e.event === 'error');
        assert.equal(q.event, 'queued', `${this.name}: ${line} -> ${JSON.stringify(q)}`);
        const s = await this.next(e => (e.event === 'sent' || e.event === 'send_failed') && e.id === q.id);
        assert.equal(s.event, 'sent', `${this.name}: ${JSON.stringify(s)}`);
        return q.id;
    }

    async stop() {
        if (this.ended) return;
        this.cmd('quit');
        const t = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
        await this.exited;
        clearTimeout(t);
    }
}
