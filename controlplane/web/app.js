// The demo page: join a room with a name, see everyone in a grid. Tokens come from the node's
// /api/dev-token (on for development nodes). URL parameters: ?room=R&name=N prefill the form,
// &autojoin=1 joins at once, &relay=1 sends media through the node's TURN relay only,
// &video_codec=VP9 (or VP8, H264, AV1) publishes video with that codec if the browser has it,
// &simulcast=0 publishes one encoding instead of three, &svc=L3T3_KEY publishes one encoding with
// that scalabilityMode (spatial/temporal layers inside it, e.g. with &video_codec=VP9),
// &width=W&height=H asks the camera for
// that size (default 640x360), &publish=0 joins to watch only (no camera, no microphone),
// &adaptive=0 takes every video at the most the bandwidth allows, whatever its tile's size
// (by default a tile's size picks the layer: Room.observeSize).
import { Room } from './ringlane.js';

const params = new URLSearchParams(location.search);
const adaptive = params.get('adaptive') !== '0';
const $ = (id) => document.getElementById(id);

const state = {
  joined: false,
  identity: null,
  room: null,
  publisher: 'new',
  subscriber: 'new',
  reconnecting: false,
  reconnects: 0,
  errors: [],
  events: [],
};
let room = null;
let localStream = null;
const tiles = new Map(); // identity (or screenTile(identity)) -> {figure, video, stream, caption}
let screenTrack = null; // what this page shares as a screen
// A participant's screen share has a tile of its own beside its camera's.
const screenTile = (identity) => `${identity}\u0000screen`;

function record(type, detail) {
  state.events.push({ type, ...detail, at: Date.now() });
  if (state.events.length > 200) state.events.shift();
}

function fail(code, message) {
  state.errors.push({ code, message, at: Date.now() });
  setStatus(message, true);
}

function setStatus(text, isError = false) {
  const el = $('status');
  el.textContent = text;
  el.classList.toggle('error', isError);
}

// --- tiles ---

function tile(identity, self = false, screen = false) {
  const key = screen ? screenTile(identity) : identity;
  let t = tiles.get(key);
  if (t) return t;
  const figure = document.createElement('figure');
  figure.className = ['tile', self && 'self', screen && 'screen'].filter(Boolean).join(' ');
  const video = document.createElement('video');
  video.autoplay = true;
  video.playsInline = true;
  video.muted = self;
  const caption = document.createElement('figcaption');
  caption.textContent = self ? `${identity} (you)` : screen ? `${identity}'s screen` : identity;
  // What this tile receives (or, for yourself, sends at most): resolution, frame rate, bitrate.
  const quality = document.createElement('span');
  quality.className = 'quality';
  figure.append(video, caption, quality);
  if (self) $('grid').prepend(figure);
  else $('grid').append(figure);
  t = { figure, video, stream: new MediaStream(), caption, quality, bytes: null };
  video.srcObject = t.stream;
  tiles.set(key, t);
  return t;
}

function play(video) {
  // Without a user gesture (autojoin) a browser may refuse sound: play muted, unmute on a click.
  video.play().catch(() => {
    video.muted = true;
    video.play().catch(() => {});
    document.addEventListener('click', () => { video.muted = false; }, { once: true });
  });
}

function removeTile(identity) {
  for (const key of [identity, screenTile(identity)]) {
    tiles.get(key)?.unobserve?.();
    tiles.get(key)?.figure.remove();
    tiles.delete(key);
  }
}

function markMuted(identity, kind, muted) {
  const t = tiles.get(identity);
  t?.figure.classList.toggle(kind === 'video' ? 'video-muted' : 'audio-muted', muted);
}

// --- the room ---

function wire(r) {
  r.addEventListener('participant_joined', (e) => {
    record('participant_joined', e.detail);
    tile(e.detail.identity);
  });
  r.addEventListener('participant_left', (e) => {
    record('participant_left', e.detail);
    removeTile(e.detail.identity);
  });
  r.addEventListener('track', (e) => {
    const { identity, trackId, kind, track, source } = e.detail;
    record('track', { identity, trackId, kind, source });
    const t = tile(identity, false, source === 'screen');
    t.stream.addTrack(track);
    const info = r.participants.get(identity)?.tracks.get(trackId);
    if (info) markMuted(identity, kind, info.muted);
    if (kind === 'video' && adaptive) {
      // The tile's size picks the layer: a small tile gets a small one.
      t.unobserve?.();
      t.unobserve = r.observeSize(trackId, t.video);
    }
    play(t.video);
  });
  r.addEventListener('track_ended', (e) => {
    const { identity, trackId, kind, track } = e.detail;
    record('track_ended', { identity, trackId, kind });
    const screen = tiles.get(screenTile(identity));
    if (screen?.stream.getTracks().includes(track)) {
      screen.unobserve?.();
      screen.figure.remove();
      tiles.delete(screenTile(identity));
      return;
    }
    const t = tiles.get(identity);
    t?.stream.removeTrack(track);
    if (kind === 'video') {
      t?.unobserve?.();
      if (t) t.unobserve = null;
    }
  });
  r.addEventListener('layer', (e) => record('layer', e.detail));
  r.addEventListener('track_muted', (e) => {
    const { identity, kind, muted } = e.detail;
    record('track_muted', e.detail);
    if (kind) markMuted(identity, kind, muted);
  });
  r.addEventListener('connection_state', (e) => {
    state[e.detail.pc] = e.detail.state;
    record('connection_state', e.detail);
  });
  r.addEventListener('error', (e) => fail(e.detail.code, e.detail.message));
  r.addEventListener('media_reset', () => record('media_reset', {}));
  r.addEventListener('layers', (e) => record('layers', e.detail));
  r.addEventListener('speakers', (e) => {
    record('speakers', { speakers: e.detail.speakers.map((s) => s.participant) });
    const loudest = e.detail.speakers[0]?.participant;
    for (const [identity, t] of tiles) t.figure.classList.toggle('speaking', identity === loudest);
  });
  r.addEventListener('reconnecting', (e) => {
    state.reconnecting = true;
    record('reconnecting', e.detail);
    setStatus('connection lost; reconnecting...');
  });
  r.addEventListener('reconnected', () => {
    state.reconnecting = false;
    state.reconnects++;
    record('reconnected', {});
    setStatus(`in ${state.room} as ${state.identity}`);
  });
}

// A server listening on every address hands out ws://0.0.0.0:...: reach it where the page came from.
function reachable(wsUrl) {
  const u = new URL(wsUrl);
  if (u.hostname === '0.0.0.0' || u.hostname === '[::]') u.host = location.host;
  return u.toString();
}

async function join() {
  const roomName = $('room').value.trim();
  const name = $('name').value.trim();
  if (!roomName || !name) {
    setStatus('a room and a name are needed', true);
    return;
  }
  $('join').disabled = true;
  setStatus('joining...');
  try {
    const query = new URLSearchParams({ room: roomName, identity: name });
    const res = await fetch(`/api/dev-token?${query}`);
    const grant = await res.json().catch(() => ({}));
    if (!res.ok) {
      const message = res.status === 404
        ? 'this node hands out no demo tokens (start it with --dev-tokens on)'
        : grant.error?.message ?? `token request failed (${res.status})`;
      throw Object.assign(new Error(message), { code: grant.error?.code ?? 'token' });
    }
    const watchOnly = params.get('publish') === '0';
    localStream = watchOnly ? new MediaStream() : await navigator.mediaDevices.getUserMedia({
      audio: true,
      video: {
        width: { ideal: Number(params.get('width') ?? 640) },
        height: { ideal: Number(params.get('height') ?? 360) },
        frameRate: { ideal: 24 },
      },
    });
    const relay = params.get('relay') === '1';
    room = new Room({
      wsUrl: reachable(grant.ws_url),
      token: grant.token,
      iceServers: relay ? grant.ice_servers ?? [] : [],
      iceTransportPolicy: relay ? 'relay' : 'all',
      videoCodec: params.get('video_codec'),
      simulcast: params.get('simulcast') !== '0',
      svc: params.get('svc'),
    });
    wire(room);
    const joined = await room.join();
    Object.assign(state, { joined: true, identity: joined.participant, room: joined.room });
    $('join-form').hidden = true;
    $('call').hidden = false;
    setStatus(`in ${joined.room} as ${joined.participant}`);
    const self = tile(joined.participant, true);
    if (watchOnly) self.caption.textContent = `${joined.participant} (you, watching)`;
    for (const id of ['mic', 'camera']) $(id).hidden = watchOnly;
    for (const track of localStream.getTracks()) self.stream.addTrack(track);
    play(self.video);
    if (!watchOnly) await room.publish(localStream);
  } catch (err) {
    fail(err.code ?? err.name ?? 'error', err.message);
    if (!state.joined) await leave(false);
  } finally {
    $('join').disabled = false;
  }
}

// The screen share: its own tile here too, beside the camera's.
async function share(track) {
  screenTrack?.stop();
  screenTrack = track;
  const t = tile(state.identity, true, true);
  t.caption.textContent = 'your screen';
  for (const old of t.stream.getTracks()) t.stream.removeTrack(old);
  t.stream.addTrack(track);
  play(t.video);
  setPressed('screen', true);
  track.addEventListener('ended', () => {
    if (screenTrack === track) unshare().catch(() => {});
  }, { once: true });
  return room.shareScreen(track);
}

async function unshare() {
  const track = screenTrack;
  screenTrack = null;
  setPressed('screen', false);
  const t = tiles.get(screenTile(state.identity));
  t?.figure.remove();
  tiles.delete(screenTile(state.identity));
  await room?.stopScreen();
  track?.stop();
}

async function leave(announce = true) {
  const r = room;
  room = null;
  await r?.leave();
  localStream?.getTracks().forEach((t) => t.stop());
  localStream = null;
  for (const identity of [...tiles.keys()]) removeTile(identity);
  Object.assign(state, { joined: false, publisher: 'closed', subscriber: 'closed' });
  $('call').hidden = true;
  $('join-form').hidden = false;
  for (const id of ['mic', 'camera', 'screen']) setPressed(id, false);
  screenTrack?.stop();
  screenTrack = null;
  if (announce) {
    record('left', {});
    setStatus('left the room');
  }
}

function setPressed(id, pressed) {
  const b = $(id);
  b.setAttribute('aria-pressed', String(pressed));
  const labels = {
    mic: ['Mute mic', 'Unmute mic'],
    camera: ['Stop camera', 'Start camera'],
    screen: ['Share screen', 'Stop sharing'],
  };
  b.textContent = labels[id][pressed ? 1 : 0];
}

function toggle(id, kind) {
  const muted = $(id).getAttribute('aria-pressed') !== 'true';
  setPressed(id, muted);
  room?.setMuted(kind, muted);
  if (state.identity) markMuted(state.identity, kind, muted);
}

// --- what tests read ---

function selectedPair(report) {
  for (const s of report.values()) {
    if (s.type !== 'transport' || !s.selectedCandidatePairId) continue;
    const pair = report.get(s.selectedCandidatePairId);
    const local = report.get(pair?.localCandidateId);
    const remote = report.get(pair?.remoteCandidateId);
    if (local && remote) {
      return { local: `${local.address}:${local.port}`, remote: `${remote.address}:${remote.port}`,
               protocol: local.protocol, candidateType: local.candidateType,
               relayProtocol: local.relayProtocol ?? null,
               // The browser's send-side estimate (publisher) where it has one.
               availableOutgoingBitrate: pair.availableOutgoingBitrate ?? null,
               currentRoundTripTime: pair.currentRoundTripTime ?? null };
    }
  }
  return null;
}

// The codec an inbound-rtp or outbound-rtp stat uses: {mimeType, sdpFmtpLine}, or null.
function codecOf(report, s) {
  const c = report.get(s.codecId);
  return c ? { mimeType: c.mimeType, sdpFmtpLine: c.sdpFmtpLine ?? '' } : null;
}

// inbound-rtp per remote track, named by its publisher. A reused m-line may leave an older
// SSRC's stats behind on the same mid: the one that received last is the track's.
async function remoteStats(r) {
  const pc = r.subscriber;
  if (!pc) return { list: [], pair: null };
  const entries = r.remoteTracks();
  const byMid = new Map(entries.map((e) => [e.mid, e]));
  const byTrack = new Map(entries.map((e) => [e.track.id, e]));
  const report = await pc.getStats();
  const last = (s) => s?.lastPacketReceivedTimestamp ?? 0;
  const best = new Map();
  for (const s of report.values()) {
    if (s.type !== 'inbound-rtp') continue;
    const e = byMid.get(s.mid) ?? byTrack.get(s.trackIdentifier);
    if (!e) continue;
    if (!best.has(e) || last(s) > last(best.get(e))) best.set(e, s);
  }
  const list = [...best].map(([e, s]) => ({
    identity: e.identity,
    trackId: e.trackId,
    kind: e.kind,
    source: e.source,
    codec: codecOf(report, s),
    framesDecoded: s.framesDecoded ?? 0,
    frameWidth: s.frameWidth ?? 0,
    frameHeight: s.frameHeight ?? 0,
    packetsReceived: s.packetsReceived ?? 0,
    packetsLost: s.packetsLost ?? 0,
    bytesReceived: s.bytesReceived ?? 0,
    nackCount: s.nackCount ?? 0,
    pliCount: s.pliCount ?? 0,
    freezeCount: s.freezeCount ?? 0,
    totalFreezesDuration: s.totalFreezesDuration ?? 0,
    framesPerSecond: s.framesPerSecond ?? 0,
  }));
  return { list, pair: selectedPair(report) };
}

async function publisherStats(r) {
  const pc = r.publisher;
  if (!pc) return { outbound: [], pair: null };
  const report = await pc.getStats();
  const outbound = [...report.values()].filter((s) => s.type === 'outbound-rtp').map((s) => ({
    kind: s.kind,
    rid: s.rid ?? null,
    active: s.active ?? true,
    codec: codecOf(report, s),
    packetsSent: s.packetsSent ?? 0,
    bytesSent: s.bytesSent ?? 0,
    framesEncoded: s.framesEncoded ?? 0,
    scalabilityMode: s.scalabilityMode ?? null,
    frameWidth: s.frameWidth ?? 0,
    frameHeight: s.frameHeight ?? 0,
    framesPerSecond: s.framesPerSecond ?? 0,
    nackCount: s.nackCount ?? 0,
    pliCount: s.pliCount ?? 0,
  }));
  return { outbound, pair: selectedPair(report) };
}

window.ringlaneTest = {
  state: () => ({
    ...state,
    participants: room ? [...room.participants.keys()] : [],
    publisher: room?.publisher?.connectionState ?? state.publisher,
    subscriber: room?.subscriber?.connectionState ?? state.subscriber,
  }),
  // Each peer connection's ICE transport as getStats() has it (local ufrag, role, state).
  async iceTransports() {
    const out = {};
    for (const [name, pc] of [['publisher', room?.publisher], ['subscriber', room?.subscriber]]) {
      const report = pc ? await pc.getStats() : new Map();
      report.forEach((x) => {
        if (x.type === 'transport') {
          out[name] = { ufrag: x.iceLocalUsernameFragment, role: x.iceRole, state: x.iceState,
            pairChanges: x.selectedCandidatePairChanges };
        }
      });
    }
    return out;
  },
  // Room.setLayer for a received track: the reply, or why not (temporal: absent, all of them).
  setLayer: (track, spatial, paused = false, temporal = undefined) => (room
    ? room.setLayer(track, { spatial, paused, temporal }).then((r) => r, (e) => String(e?.message ?? e))
    : 'no room'),
  // Shares a second fake camera track (of width x height) as a screen (Room.shareScreen):
  // headless Chromium has no screen to capture. The published tracks, or why not.
  async shareScreen(width = 1280, height = 720) {
    if (!room) return 'no room';
    try {
      const s = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: width }, height: { ideal: height } } });
      return await share(s.getVideoTracks()[0]);
    } catch (e) {
      return String(e?.message ?? e);
    }
  },
  stopScreen: () => (room ? unshare().then(() => true, (e) => String(e?.message ?? e)) : 'no room'),
  // An ICE restart of both peer connections (Room.restartIce): true, or why not.
  restartIce: () => (room ? room.restartIce().then(() => true, (e) => String(e?.message ?? e)) : 'no room'),
  // The SDP of both peer connections as the browser holds them (null before there is one).
  descriptions() {
    const both = (pc) => ({
      local: pc?.localDescription?.sdp ?? null,
      remote: pc?.remoteDescription?.sdp ?? null,
    });
    return { publisher: both(room?.publisher), subscriber: both(room?.subscriber) };
  },
  async stats() {
    const r = room;
    if (!r) {
      const closed = { connectionState: 'closed' };
      return { participants: [], remote: [], publisher: closed, subscriber: { ...closed } };
    }
    const [sub, pub] = await Promise.all([remoteStats(r), publisherStats(r)]);
    return {
      participants: [...r.participants.keys()],
      remote: sub.list,
      publisher: { connectionState: r.publisher?.connectionState ?? 'new', ...pub },
      subscriber: { connectionState: r.subscriber?.connectionState ?? 'new', pair: sub.pair },
    };
  },
};

// Each tile's video as getStats() sees it, once a second: how the adaptation looks to a person.
async function showQuality() {
  const r = room;
  if (!r) return;
  const [sub, pub] = await Promise.all([remoteStats(r), publisherStats(r)]).catch(() => [null, null]);
  const now = performance.now();
  const show = (t, width, height, fps, bytes) => {
    const kbps = t.bytes ? Math.round(((bytes - t.bytes.value) * 8) / (now - t.bytes.at)) : 0;
    t.bytes = { value: bytes, at: now };
    t.quality.textContent = width ? `${width}x${height} · ${Math.round(fps)} fps · ${kbps} kbps` : '';
  };
  for (const s of sub?.list ?? []) {
    const t = tiles.get(s.source === 'screen' ? screenTile(s.identity) : s.identity);
    if (t && s.kind === 'video') show(t, s.frameWidth, s.frameHeight, s.framesPerSecond, s.bytesReceived);
  }
  const self = tiles.get(state.identity);
  const sent = (pub?.outbound ?? []).filter((o) => o.kind === 'video');
  if (self && sent.length) {
    const top = sent.reduce((a, b) => (b.frameWidth > a.frameWidth ? b : a));
    const bytes = sent.reduce((n, o) => n + o.bytesSent, 0);
    show(self, top.frameWidth, top.frameHeight, top.framesPerSecond ?? 0, bytes);
  }
}
setInterval(() => { showQuality().catch(() => {}); }, 1000);

// --- the page ---

$('room').value = params.get('room') ?? 'demo';
$('name').value = params.get('name') ?? '';
$('join-form').addEventListener('submit', (e) => {
  e.preventDefault();
  join();
});
$('mic').addEventListener('click', () => toggle('mic', 'audio'));
$('camera').addEventListener('click', () => toggle('camera', 'video'));
$('leave').addEventListener('click', () => leave());
$('screen').addEventListener('click', () => {
  const work = screenTrack
    ? unshare()
    : navigator.mediaDevices.getDisplayMedia({ video: true }).then((s) => share(s.getVideoTracks()[0]));
  work.catch((err) => fail(err.code ?? err.name ?? 'error', err.message));
});
if (params.get('autojoin') === '1') join();
