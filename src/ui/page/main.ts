/**
 * The dashboard page: the event log so far (GET /api/snapshot), then every later event as it
 * happens (EventSource on /api/events), folded into the store of the view (view.ts) and drawn at
 * most a few times a second.
 */
/// <reference lib="dom" />
import { parseEventLine, type UiEvent } from '../protocol.ts';
import { render, schedule, setState, startView, stats, store } from './view.ts';

const liveRunning = () => store.runs.some((d) => d && d.live && d.status === 'running');
const followed = () => store.runs.filter((d) => d?.followed).length;

function subscribe(): void {
  // dashboard.js follows its runs' files: events may come as long as it serves, whatever the runs' state.
  const following = followed() > 0;
  if (!following && !store.runs.some((d) => d?.live)) return setState('ended', 'saved runs');
  if (!following && !liveRunning()) return setState('ended', 'run ended');
  const es = new EventSource(`/api/events?since=${store.seq}`);
  const onOpen = () => (following ? setState('following', `following ${followed()} run${followed() > 1 ? 's' : ''}`) : setState('live', 'live'));
  es.onopen = onOpen;
  es.onmessage = (m: MessageEvent<string>) => {
    const ev: UiEvent = parseEventLine(m.data);
    store.apply(ev);
    stats.liveEvents++;
    schedule();
    if (following) return;
    // The run is over: the server closes next; the page keeps everything it has.
    if (ev.type === 'status' && !liveRunning()) {
      es.close();
      // Draw the last records now, not after the coalescing delay: "ended" means the page shows
      // everything the run logged (the browser test reads the charts as soon as it sees it).
      render();
      setState('ended', `run ${ev.status === 'done' ? 'finished' : ev.status} — the page keeps its data`);
    }
  };
  es.onerror = () => {
    if (stats.state !== 'ended') setState('lost', following ? 'dashboard.js is not answering — retrying' : 'connection lost — retrying');
  };
}

async function start(): Promise<void> {
  startView();
  const res = await fetch('/api/snapshot');
  if (!res.ok) throw new Error(`GET /api/snapshot: ${res.status}`);
  for (const line of (await res.text()).split('\n')) {
    if (!line) continue;
    store.apply(parseEventLine(line));
    stats.snapshotEvents++;
  }
  render();
  subscribe();
}

start().catch((e: unknown) => {
  setState('lost', `could not load the runs: ${e instanceof Error ? e.message : String(e)}`);
});
