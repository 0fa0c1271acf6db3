/**
 * The dashboard server without a browser: the snapshot is the whole event log, the event stream
 * resumes after a given seq (or the browser's Last-Event-ID), records are checked and NaN survives,
 * requests naming another host are refused, and a port in use is a clear error.
 */
import { get, type IncomingHttpHeaders } from 'node:http';
import { gunzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { UiError } from '../../src/ui/errors.ts';
import { Hub } from '../../src/ui/hub.ts';
import { parseEventLine, type UiEvent } from '../../src/ui/protocol.ts';
import { serve, type Dashboard } from '../../src/ui/server.ts';
import { trainRecord } from '../support/train-record.ts';

function trainLoss(step: number, loss: number): Record<string, unknown> {
  return trainRecord(step, {
    loss,
    lossMain: loss,
    z: 1,
    skipped: !Number.isFinite(loss),
    routing: [{ layer: 0, load: [0.5, 0.5], entropy: 0.69, maxShare: 0.5 }],
  });
}

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

function request(url: string, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((res, rej) => {
    get(url, { headers }, (r) => {
      const chunks: Buffer[] = [];
      r.on('data', (c: Buffer) => chunks.push(c));
      r.on('end', () => res({ status: r.statusCode ?? 0, headers: r.headers, body: Buffer.concat(chunks) }));
    }).on('error', rej);
  });
}

/** Read server-sent events until `count` data lines came, then hang up. */
function readEvents(url: string, count: number, headers: Record<string, string> = {}): Promise<{ id: number; event: UiEvent }[]> {
  return new Promise((res, rej) => {
    const out: { id: number; event: UiEvent }[] = [];
    const req = get(url, { headers }, (r) => {
      let buf = '';
      r.setEncoding('utf8');
      r.on('data', (c: string) => {
        buf += c;
        let k: number;
        while ((k = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, k);
          buf = buf.slice(k + 2);
          const id = block.match(/^id: (\d+)$/m);
          const data = block.match(/^data: (.*)$/m);
          if (id && data) out.push({ id: Number(id[1]), event: parseEventLine(data[1]!) });
          if (out.length >= count) {
            req.destroy();
            res(out);
          }
        }
      });
    });
    req.on('error', (e) => (out.length >= count ? undefined : rej(e)));
  });
}

describe('dashboard server', () => {
  let open: Dashboard[] = [];
  afterEach(async () => {
    await Promise.all(open.map((d) => d.close()));
    open = [];
  });

  async function start(hub: Hub, port = 0): Promise<Dashboard> {
    const d = await serve({ address: { host: '127.0.0.1', port }, hub, flags: { port: '--ui', host: '--ui-host' } });
    open.push(d);
    return d;
  }

  it('serves the whole history as a snapshot, then streams the later events from its seq', async () => {
    const hub = new Hub();
    const run = hub.addRun('runs/x', 'runs/x', true);
    expect(hub.record(run, trainLoss(1, 0.5))).toBeNull();
    expect(hub.record(run, trainLoss(2, Number.NaN))).toBeNull(); // live records hold NaN as a number
    expect(hub.record(run, { ...trainLoss(3, 0.4), loss: 'NaN' })).toBeNull(); // files spell it "NaN"
    const d = await start(hub);
    const snap = await request(`${d.url}api/snapshot`, { 'Accept-Encoding': 'gzip' });
    expect(snap.status).toBe(200);
    expect(snap.headers['content-encoding']).toBe('gzip');
    const lines = gunzipSync(snap.body).toString('utf8').trim().split('\n').map(parseEventLine);
    expect(lines.map((e) => e.type)).toEqual(['run', 'record', 'record', 'record', 'seq']);
    expect(lines.at(-1)).toEqual({ type: 'seq', seq: 4 });
    const losses = lines.flatMap((e) => (e.type === 'record' && e.record.kind === 'train' ? [e.record.loss] : []));
    expect(losses[0]).toBe(0.5);
    expect(losses[1]).toBeNaN();
    expect(losses[2]).toBeNaN();

    const stream = readEvents(`${d.url}api/events?since=4`, 2);
    await new Promise((r) => setTimeout(r, 100));
    hub.record(run, trainLoss(4, 0.3));
    hub.status(run, 'done');
    const got = await stream;
    expect(got.map((g) => g.id)).toEqual([5, 6]);
    expect(got[0]!.event).toMatchObject({ type: 'record', record: { step: 4, loss: 0.3 } });
    expect(got[1]!.event).toEqual({ type: 'status', run: 0, status: 'done' });

    // A reconnecting browser names the last event it got; the stream replays from there.
    const replay = await readEvents(`${d.url}api/events?since=0`, 2, { 'Last-Event-ID': '4' });
    expect(replay.map((g) => g.id)).toEqual([5, 6]);
  });

  it('refuses a record that does not parse, naming the field', () => {
    const hub = new Hub();
    const run = hub.addRun('r', 'r', true);
    expect(hub.record(run, { ...trainLoss(1, 0.5), gradNorm: 'big' })).toMatch(/^train record: gradNorm/);
    expect(hub.record(run, { kind: 'future-kind' })).toBeNull();
    expect(hub.seq).toBe(1);
  });

  it('answers only requests naming a loopback host, and bad query values are a 400', async () => {
    const d = await start(new Hub());
    expect((await request(d.url)).status).toBe(200);
    expect((await request(d.url, { Host: `localhost:${d.address.port}` })).status).toBe(200);
    const rebound = await request(d.url, { Host: `attacker.example:${d.address.port}` });
    expect(rebound.status).toBe(403);
    expect((await request(`${d.url}api/events?since=-3`)).status).toBe(400);
    expect((await request(`${d.url}nope`)).status).toBe(404);
    const js = await request(`${d.url}app.js`);
    expect(js.status).toBe(200);
    expect(js.headers['content-type']).toMatch(/javascript/);
  });

  it('a port in use is a UiError naming the port and the fix', async () => {
    const first = await start(new Hub());
    const second = start(new Hub(), first.address.port);
    await expect(second).rejects.toBeInstanceOf(UiError);
    await expect(second).rejects.toThrow(new RegExp(`127\\.0\\.0\\.1:${first.address.port}: the port is in use.*--ui 0 for a free one`));
  });
});
