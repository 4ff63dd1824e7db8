// lib.mjs - helpers for the interop tests (Node, against wasim and our C tools):
//   startPeer(opts)              one Baileys client (peer.mjs) as a child: next(), cmd(), close()
//   startProcess(cmd, args, o)   any child process, waiting for a ready line
//   httpJson(method, url, body)  JSON over HTTP (wasim's control API), with global fetch
//   test(name, fn) / run()       a tiny runner: prints "ok"/"FAIL" per test, then
//                                "N passed, N failed", exits 1 when anything failed
//   tmpDir(), freePort(), sleep(), assert (node:assert/strict)
// Every child started here is killed when run() ends or the process exits.
// SPDX-License-Identifier: GPL-3.0-or-later
import assert from 'assert/strict';
import { spawn } from 'child_process';
import fs from 'fs';
import net from 'net';
import os from 'os';
import path from 'path';
import readline from 'readline';
import { fileURLToPath } from 'url';

export { assert };

const here = path.dirname(fileURLToPath(import.meta.url));
export const PEER = path.join(here, 'peer.mjs');
export const NODE_MODULES = path.resolve(here, '..', 'node_modules');

const DEFAULT_NEXT_MS = 30000;
const DEFAULT_CMD_MS = 60000;
const DEFAULT_READY_MS = 30000;
const DEFAULT_TEST_MS = 180000;
const STOP_GRACE_MS = 3000;
const TAIL_LINES = 200;

const children = new Set();

function killAll() {
    for (const c of children) {
        try {
            c.kill('SIGKILL');
        } catch {
            // already gone
        }
    }
    children.clear();
}
process.on('exit', killAll);

export const sleep = ms => new Promise(r => setTimeout(r, ms));

const tmpDirs = [];
process.on('exit', () => {
    if (process.env.WA_KEEP_TMP) return;
    for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true });
});

/** A fresh temporary directory (removed at exit unless WA_KEEP_TMP is set). */
export function tmpDir(prefix = 'wa-interop-') {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    tmpDirs.push(d);
    return d;
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort() {
    return new Promise((resolve, reject) => {
        const s = net.createServer();
        s.on('error', reject);
        s.listen(0, '127.0.0.1', () => {
            const { port } = s.address();
            s.close(() => resolve(port));
        });
    });
}

/**
 * Turns a predicate into a function: a function is used as is; a string matches `ev`; an object
 * matches when every one of its fields equals the event's (nested objects compared the same
 * way, RegExp values tested against strings).
 */
export function matcher(pred) {
    if (typeof pred === 'function') return pred;
    if (typeof pred === 'string') return e => e.ev === pred;
    if (pred && typeof pred === 'object') return e => partialMatch(pred, e);
    throw new Error(`bad predicate ${pred}`);
}

function partialMatch(want, got) {
    if (want instanceof RegExp) return typeof got === 'string' && want.test(got);
    if (want && typeof want === 'object') {
        if (!got || typeof got !== 'object') return false;
        return Object.keys(want).every(k => partialMatch(want[k], got[k]));
    }
    return want === got;
}

function describe(pred) {
    if (typeof pred === 'function') return pred.toString().slice(0, 120);
    return JSON.stringify(pred, (k, v) => (v instanceof RegExp ? v.toString() : v));
}

/**
 * Line-oriented event queue. Each event is consumed at most once: next(pred) returns the
 * earliest unconsumed event that matches (already received or still to come) and marks it
 * consumed, so waiting after an event arrived is no race.
 */
class EventQueue {
    constructor(label) {
        this.label = label;
        this.events = [];
        this.waiters = [];
        this.ended = null;
    }

    push(e) {
        this.events.push(e);
        for (const w of [...this.waiters]) {
            if (!e.__used && w.fn(e)) {
                e.__used = true;
                w.done(e);
            }
        }
    }

    end(reason) {
        this.ended = reason;
        for (const w of [...this.waiters]) w.fail(new Error(`${this.label}: ${reason}`));
    }

    find(fn) {
        return this.events.find(e => !e.__used && fn(e));
    }

    next(pred, timeoutMs = DEFAULT_NEXT_MS) {
        const fn = matcher(pred);
        const have = this.find(fn);
        if (have) {
            have.__used = true;
            return Promise.resolve(have);
        }
        if (this.ended) return Promise.reject(new Error(`${this.label}: ${this.ended}`));
        return new Promise((resolve, reject) => {
            const w = {
                fn,
                done: e => {
                    clearTimeout(w.timer);
                    this.waiters.splice(this.waiters.indexOf(w), 1);
                    resolve(e);
                },
                fail: err => {
                    clearTimeout(w.timer);
                    this.waiters.splice(this.waiters.indexOf(w), 1);
                    reject(err);
                },
            };
            w.timer = setTimeout(() => w.fail(new Error(`${this.label}: no event ${describe(pred)} ` +
                `within ${timeoutMs} ms; last events:\n  ${this.tail(8).join('\n  ')}`)), timeoutMs);
            this.waiters.push(w);
        });
    }

    /** Waits ms, then rejects if an event matching pred arrived meanwhile (and is unconsumed). */
    async none(pred, ms) {
        const fn = matcher(pred);
        const from = this.events.length;
        await sleep(ms);
        const bad = this.events.slice(from).find(e => !e.__used && fn(e));
        if (bad) throw new Error(`${this.label}: unexpected ${JSON.stringify(strip(bad))}`);
    }

    tail(n) {
        return this.events.slice(-n).map(e => JSON.stringify(strip(e)).slice(0, 300));
    }
}

function strip(e) {
    const { __used, ...rest } = e;
    return rest;
}

function track(child, label, onLine, onExit) {
    children.add(child);
    const exited = new Promise(resolve => {
        child.on('exit', (code, signal) => {
            children.delete(child);
            onExit(code, signal);
            resolve({ code, signal });
        });
    });
    child.on('error', err => onLine('stderr', `${label}: spawn error: ${err.message}`));
    for (const stream of ['stdout', 'stderr']) {
        if (!child[stream]) continue;
        readline.createInterface({ input: child[stream] }).on('line', l => onLine(stream, l));
    }
    return exited;
}

/**
 * Starts one Baileys peer (peer.mjs).
 * opts: version 6|7, url, auth (dir), name, pairPhone, logLevel, reconnect (array or 'none'),
 *       keepalive (Baileys' keepAliveIntervalMs; it gives up after keepalive + 5 s of silence),
 *       verbose (echo events to stderr; also env WA_PEER_VERBOSE=1).
 * Resolves after the `start` event. The peer object:
 *   events            every event received, in order (objects as printed by peer.mjs)
 *   next(pred, ms)    the next unconsumed event matching pred (function | ev name | pattern)
 *   none(pred, ms)    rejects if a matching event arrives within the next ms
 *   cmd(obj, ms)      sends a command (req id added) and resolves with its `result` event
 *   ok(obj, ms)       cmd() that throws unless the result has ok: true
 *   kill(signal)      signals the process; exited resolves with {code, signal}
 *   close(ms)         `quit`, then waits for exit (SIGKILL after ms); resolves with the code
 *   stderr            the last stderr lines (Baileys' log with logLevel debug)
 */
export async function startPeer(opts) {
    const args = [PEER, '--version', String(opts.version), '--url', opts.url, '--auth', opts.auth];
    const name = opts.name || `b${opts.version}`;
    args.push('--name', name);
    if (opts.pairPhone) args.push('--pair-phone', String(opts.pairPhone));
    if (opts.logLevel) args.push('--log-level', opts.logLevel);
    if (opts.keepalive) args.push('--keepalive', String(opts.keepalive));
    if (opts.reconnect !== undefined) {
        args.push('--reconnect',
            Array.isArray(opts.reconnect) ? opts.reconnect.join(',') || 'none' : String(opts.reconnect));
    }
    const child = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'pipe'], cwd: here });
    const q = new EventQueue(`peer ${name}`);
    const verbose = opts.verbose || process.env.WA_PEER_VERBOSE === '1';
    const stderr = [];
    let req = 0;
    const exited = track(child, `peer ${name}`, (stream, line) => {
        if (stream === 'stderr') {
            stderr.push(line);
            if (stderr.length > TAIL_LINES) stderr.shift();
            if (verbose) process.stderr.write(`[${name}!] ${line}\n`);
            return;
        }
        let e;
        try {
            e = JSON.parse(line);
        } catch {
            e = { ev: 'stdout', line };
        }
        if (verbose) process.stderr.write(`[${name}] ${line.slice(0, 400)}\n`);
        q.push(e);
    }, (code, signal) => q.end(`exited (code ${code}, signal ${signal})`));
    child.stdin.on('error', () => {});

    const peer = {
        name,
        version: opts.version,
        proc: child,
        events: q.events,
        exited,
        stderr,
        next: (pred, ms) => q.next(pred, ms),
        none: (pred, ms) => q.none(pred, ms),
        async cmd(obj, ms = DEFAULT_CMD_MS) {
            const id = ++req;
            child.stdin.write(JSON.stringify({ ...obj, req: id }) + '\n');
            return q.next(e => e.ev === 'result' && e.req === id, ms);
        },
        async ok(obj, ms) {
            const r = await peer.cmd(obj, ms);
            if (!r.ok) throw new Error(`peer ${name}: ${obj.cmd} failed: ${r.error}`);
            return r;
        },
        kill(signal = 'SIGTERM') {
            child.kill(signal);
        },
        async close(ms = STOP_GRACE_MS * 2) {
            if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
            try {
                child.stdin.write(JSON.stringify({ cmd: 'quit', req: ++req }) + '\n');
            } catch {
                // stdin gone: the kill below does it
            }
            const t = setTimeout(() => child.kill('SIGKILL'), ms);
            const { code } = await exited;
            clearTimeout(t);
            return code;
        },
    };
    await q.next('start', DEFAULT_READY_MS);
    return peer;
}

/**
 * Starts a process and waits until a line of its stdout or stderr matches readyRegex.
 * opts: readyRegex, timeoutMs, env (merged into process.env), cwd, name, verbose.
 * Returns { proc, lines, match (the ready line's RegExp match), waitLine(re, ms), kill(sig),
 *           stop(ms) (SIGTERM, SIGKILL after ms; resolves {code, signal}), exited }.
 * Rejects, with the output so far, if the process exits or times out before the ready line.
 */
export async function startProcess(cmd, args = [], opts = {}) {
    const name = opts.name || path.basename(cmd);
    const child = spawn(cmd, args, {
        stdio: ['ignore', 'pipe', 'pipe'],
        cwd: opts.cwd,
        env: { ...process.env, ...(opts.env || {}) },
    });
    const q = new EventQueue(name);
    const lines = [];
    const verbose = opts.verbose || process.env.WA_PEER_VERBOSE === '1';
    const exited = track(child, name, (stream, line) => {
        lines.push(line);
        if (lines.length > 5000) lines.shift();
        if (verbose) process.stderr.write(`[${name}] ${line}\n`);
        q.push({ ev: 'line', stream, line });
    }, (code, signal) => q.end(`exited (code ${code}, signal ${signal})`));
    const p = {
        name,
        proc: child,
        lines,
        exited,
        match: null,
        async waitLine(re, ms = DEFAULT_READY_MS) {
            const e = await q.next(x => re.test(x.line), ms);
            return e.line.match(re);
        },
        kill(signal = 'SIGTERM') {
            child.kill(signal);
        },
        async stop(ms = STOP_GRACE_MS) {
            if (child.exitCode !== null || child.signalCode !== null) {
                return { code: child.exitCode, signal: child.signalCode };
            }
            child.kill('SIGTERM');
            const t = setTimeout(() => child.kill('SIGKILL'), ms);
            const r = await exited;
            clearTimeout(t);
            return r;
        },
    };
    if (opts.readyRegex) {
        try {
            p.match = await p.waitLine(opts.readyRegex, opts.timeoutMs || DEFAULT_READY_MS);
        } catch (err) {
            child.kill('SIGKILL');
            const out = lines.slice(-40).join('\n');
            throw new Error(`${name} not ready: ${err.message}\n--- output ---\n${out}`);
        }
    }
    return p;
}

/**
 * JSON over HTTP. body (optional) is sent as JSON. Resolves { status, body } with body parsed
 * as JSON when it is JSON, else the text. Rejects only on network errors.
 */
export async function httpJson(method, url, body) {
    const init = { method, headers: {} };
    if (body !== undefined) {
        init.headers['content-type'] = 'application/json';
        init.body = JSON.stringify(body);
    }
    const res = await fetch(url, init);
    const text = await res.text();
    let parsed = text;
    try {
        parsed = text ? JSON.parse(text) : null;
    } catch {
        // not JSON: keep the text
    }
    return { status: res.status, body: parsed };
}

/** httpJson that throws unless the status is 2xx; resolves with the body. */
export async function httpOk(method, url, body) {
    const r = await httpJson(method, url, body);
    if (r.status < 200 || r.status > 299) {
        throw new Error(`${method} ${url} -> ${r.status} ${JSON.stringify(r.body)}`);
    }
    return r.body;
}

// ---- runner ----

const tests = [];

/** Registers a test: fn is async; opts.timeoutMs (default 180 s), opts.skip (reason: not run). */
export function test(name, fn, opts = {}) {
    tests.push({ name, fn, opts });
}

/**
 * Runs the registered tests in order (WA_TEST_FILTER=regex selects some), prints one line per
 * test and "N passed, N failed", kills every child left, and exits 1 if any test failed
 * (or if none ran), else 0.
 */
export async function run() {
    const filter = process.env.WA_TEST_FILTER ? new RegExp(process.env.WA_TEST_FILTER) : null;
    let passed = 0;
    let failed = 0;
    for (const t of tests) {
        if (filter && !filter.test(t.name)) continue;
        if (t.opts.skip) {
            console.log(`skip ${t.name}: ${t.opts.skip}`);
            continue;
        }
        const t0 = Date.now();
        const limit = t.opts.timeoutMs || DEFAULT_TEST_MS;
        let timer;
        try {
            await Promise.race([
                t.fn(),
                new Promise((_, reject) => {
                    timer = setTimeout(() => reject(new Error(`timed out after ${limit} ms`)), limit);
                }),
            ]);
            passed++;
            console.log(`ok   ${t.name} (${Date.now() - t0} ms)`);
        } catch (err) {
            failed++;
            console.log(`FAIL ${t.name}: ${err && err.stack || err}`);
        } finally {
            clearTimeout(timer);
        }
    }
    killAll();
    console.log(`${passed} passed, ${failed} failed`);
    process.exit(failed || !passed ? 1 : 0);
}
