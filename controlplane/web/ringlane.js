// ringlane's browser client: signaling protocol version 2 (controlplane/PROTOCOL.md) over one
// WebSocket, one RTCPeerConnection that publishes and one that receives everyone else.
// An ES module without dependencies or a build step:
//
//   import { Room } from '/ringlane.js';
//   const room = new Room({ wsUrl, token });
//   room.addEventListener('track', (e) => show(e.detail.identity, e.detail.track));
//   await room.join();
//   await room.publish(await navigator.mediaDevices.getUserMedia({ audio: true, video: true }));
//
// Options: iceServers, iceTransportPolicy, autoSubscribe (default true), and videoCodec: the
// name of the video codec to publish with ('VP8', 'VP9', 'H264', 'AV1'; absent: the browser's
// choice). It goes first in the publish transceiver's codec preferences, the others after it,
// so a server that cannot take it falls back to them; a browser that cannot send it, or has no
// setCodecPreferences, publishes as without it. The server forwards what it answered to every
// subscriber as it is (no transcoding). simulcast (default false): video is sent as three
// encodings (rids q, h, f at 1/4, 1/2 and full resolution) and the server gives each subscriber
// the one its bandwidth and its wish (setLayer) allow. svc (default null): a scalabilityMode for
// one encoding with its layers inside (e.g. 'L3T3_KEY' with videoCodec 'VP9', 'L1T3' with VP8);
// the server forwards each subscriber the spatial and temporal layers it can take. It replaces
// simulcast when both are given.

const BACKOFF_FIRST_MS = 250;
const BACKOFF_MAX_MS = 5000;
const REQUEST_TIMEOUT_MS = 15000;
const MAX_REDIRECTS = 3;
// Join refusals that the same token will meet again: reconnecting would only repeat them.
const FATAL_CODES = new Set(['bad_token', 'token_expired', 'auth_timeout', 'room_not_granted']);

export class RoomError extends Error {
  constructor(code, message, retryable = false) {
    super(message || code);
    this.name = 'RoomError';
    this.code = code;
    this.retryable = retryable;
  }
}

// What each video section sends, lowest layer first, as {mid: [{width, height}, ...]}, for the
// subscribers' rendered sizes (observeSize): simulcast encodings by their scaleResolutionDownBy,
// SVC spatial layers by the scalabilityMode (L3T3: a quarter, a half, all; the 'h' modes step
// by 1.5). From the camera's size now: the encoder may still scale down under load.
function layerSizes(pc, svc, screen) {
  const out = {};
  for (const transceiver of pc.getTransceivers()) {
    const track = transceiver.sender.track;
    if (transceiver.mid == null || track?.kind !== 'video') continue;
    const { width, height } = track.getSettings?.() ?? {};
    if (!width || !height) continue;
    const encodings = transceiver.sender.getParameters().encodings ?? [];
    let scales = encodings.length > 1 ? encodings.map((e) => e.scaleResolutionDownBy ?? 1) : [1];
    const asked = track === screen ? '' : svc; // the svc option is the camera's
    const mode = /^[LS]([1-3])T[1-3](h?)/.exec(encodings[0]?.scalabilityMode ?? asked ?? '');
    if (encodings.length <= 1 && mode) {
      const step = mode[2] ? 1.5 : 2;
      scales = Array.from({ length: Number(mode[1]) }, (_, i) => step ** (Number(mode[1]) - 1 - i));
    }
    out[transceiver.mid] = scales.slice(0, 3).map((k) => ({
      width: Math.round(width / k), height: Math.round(height / k),
    }));
  }
  return out;
}

// The m-sections of an SDP by mid: the msid (RFC 8830: stream id = the publisher's identity,
// track id = the server's track id), the direction, and whether the port is 0 (rejected).
function sectionsByMid(sdp) {
  const sections = new Map();
  for (const part of sdp.split(/\r?\nm=/).slice(1)) {
    const mid = /\r?\na=mid:(\S+)/.exec(part)?.[1];
    if (mid === undefined) continue;
    const msid = /\r?\na=msid:(\S+) (\S+)/.exec(part);
    sections.set(mid, {
      kind: part.split(' ', 1)[0],
      rejected: /^\S+ 0 /.test(part),
      direction: /\r?\na=(sendrecv|sendonly|recvonly|inactive)/.exec(part)?.[1] ?? 'sendrecv',
      streamId: msid?.[1] ?? null,
      trackId: msid?.[2] ?? null,
    });
  }
  return sections;
}

const remoteKey = (identity, trackId) => `${identity}\n${trackId}`;

export class Room extends EventTarget {
  constructor({
    wsUrl, token, iceServers = [], autoSubscribe = true, iceTransportPolicy = 'all', videoCodec = null,
    simulcast = false, svc = null,
  } = {}) {
    super();
    if (!wsUrl || !token) throw new TypeError('Room needs wsUrl and token');
    this._wsUrl = wsUrl;
    this._token = token;
    this._autoSubscribe = autoSubscribe;
    this._videoCodec = videoCodec ? `video/${videoCodec}`.toLowerCase() : null;
    this._simulcast = simulcast && !svc;
    this._svc = svc;
    this._rtcConfig = {
      iceServers, iceTransportPolicy, bundlePolicy: 'max-bundle', rtcpMuxPolicy: 'require',
    };
    this.participants = new Map(); // identity -> {identity, tracks: Map trackId -> {kind, muted}}
    this.speakers = []; // identities, loudest first ('speakers' events)
    this.identity = null;
    this.room = null;
    this._ws = null;
    this._epoch = 0; // one per socket: work begun for an older socket is dropped
    this._nextId = 1;
    this._pending = new Map(); // request id -> {resolve, reject, timer}
    this._publisher = null;
    this._subscriber = null;
    this._stream = null;
    this._screen = null; // the video track shared as a screen (shareScreen)
    this._published = new Map(); // server track id -> {kind, mid}
    this._muted = { audio: false, video: false };
    this._remote = new Map(); // remoteKey -> {identity, trackId, kind, mid, track, stream, transceiver}
    this._streamsByMid = new Map();
    this._inbox = Promise.resolve();
    this._joined = false;
    this._left = false;
    this._attempt = 0;
    this._retryTimer = null;
  }

  get publisher() { return this._publisher; }
  get subscriber() { return this._subscriber; }
  // The remote tracks received now: {identity, trackId, kind, mid, track, stream}.
  remoteTracks() { return [...this._remote.values()]; }

  async join() {
    if (this._left) throw new RoomError('left', 'this room was left; make a new Room');
    const joined = await this._connect();
    this._joined = true;
    return joined;
  }

  async publish(mediaStream) {
    if (!this._joined || this._left) throw new RoomError('not_joined', 'join before publishing');
    this._stream = mediaStream;
    return this._publish();
  }

  setMuted(kind, muted) {
    this._muted[kind] = muted;
    for (const track of this._stream?.getTracks() ?? []) {
      if (track.kind === kind) track.enabled = !muted;
    }
    for (const [track, p] of this._published) {
      if (p.kind === kind) this._send({ type: 'mute', track, muted });
    }
  }

  // ICE restart of both peer connections (also done by itself when a connection's ICE fails,
  // e.g. after a network change): new credentials, same DTLS keys and tracks.
  async restartIce() {
    const work = [];
    if (this._publisher && this._stream) work.push(this._publish({ iceRestart: true }));
    if (this._subscriber) work.push(this._request({ type: 'restart_ice' }));
    await Promise.all(work);
  }

  // The most this client wants of a video track it receives: spatial layers (simulcast or SVC)
  // up to `spatial` (0 the lowest, 2 the highest), temporal layers up to `temporal` (0 the
  // lowest frame rate; absent: all), or none while `paused` (e.g. a tile scrolled out of view).
  setLayer(track, { spatial = 2, temporal = undefined, paused = false } = {}) {
    const msg = { type: 'layer', track, spatial, paused };
    if (temporal !== undefined) msg.temporal = temporal;
    return this._request(msg);
  }

  // Shares a screen (a getDisplayMedia track, or any video track) beside what publish() sends,
  // as its own track with source 'screen': the server puts it first in every subscriber's
  // bandwidth (before the active speaker's video). It stops with stopScreen() or when the track
  // ends (the browser's "Stop sharing").
  async shareScreen(track) {
    if (!this._joined || this._left) throw new RoomError('not_joined', 'join before sharing a screen');
    this._stream ??= new MediaStream(); // a screen without a camera or microphone
    if (this._screen) await this.stopScreen();
    this._screen = track;
    track.addEventListener('ended', () => {
      if (this._screen === track) this.stopScreen().catch(() => {});
    }, { once: true });
    return this._publish();
  }

  async stopScreen() {
    const track = this._screen;
    this._screen = null;
    const transceiver = track && this._publisher?.getTransceivers().find((t) => t.sender.track === track);
    if (!transceiver) return [];
    const id = [...this._published].find(([, p]) => p.mid === transceiver.mid)?.[0];
    this._publisher.removeTrack(transceiver.sender);
    if (!this._publisher.getSenders().some((s) => s.track)) {
      // Nothing else is sent: an offer without media would be refused, so the track goes alone.
      if (id) await this._request({ type: 'unpublish', track: id });
      this._published.delete(id);
      return [];
    }
    return this._publish();
  }

  // Adaptive stream: tells the server the size `element` shows received track `trackId` at
  // (device pixels; 0 x 0 while it is not shown) each time it changes, and the server sends
  // the smallest layer that covers it (with setLayer's wish, the lower of the two). Returns a
  // function that stops it.
  observeSize(trackId, element) {
    let timer = null;
    const report = () => {
      timer = null;
      if (!this._joined || this._left) return;
      const ratio = window.devicePixelRatio || 1;
      const width = Math.min(16384, Math.round(element.clientWidth * ratio));
      const height = Math.min(16384, Math.round(element.clientHeight * ratio));
      this._request({ type: 'layer', track: trackId, width, height })
        .then((reply) => this._emit('layer', reply), () => {});
    };
    // Resizes come in bursts (a window dragged, tiles reflowing): one report per 250 ms at most.
    const observer = new ResizeObserver(() => { timer ??= setTimeout(report, 250); });
    observer.observe(element);
    return () => {
      observer.disconnect();
      clearTimeout(timer);
    };
  }

  // Only needed with autoSubscribe: false.
  subscribe({ participant, track } = {}) { return this._request({ type: 'subscribe', participant, track }); }
  unsubscribe(track) { return this._request({ type: 'unsubscribe', track }); }

  async leave() {
    this._close(true);
  }

  // --- the socket ---

  // Ends this Room for good: no more reconnects.
  _close(sayLeave) {
    if (this._left) return;
    this._left = true;
    clearTimeout(this._retryTimer);
    if (sayLeave) this._send({ type: 'leave' });
    this._teardownMedia();
    const ws = this._ws;
    this._ws = null;
    this._epoch++;
    this._rejectPending(new RoomError('left', 'the room was left'));
    // A close after the leave frame: the server reads the leave first.
    ws?.close(1000, 'left');
  }

  _emit(type, detail = {}) { this.dispatchEvent(new CustomEvent(type, { detail })); }

  _send(msg) {
    if (this._ws?.readyState !== WebSocket.OPEN) return false;
    this._ws.send(JSON.stringify(msg));
    return true;
  }

  // Sends `msg` with a fresh id; resolves with the reply carrying that id, rejects on `error`.
  _request(msg) {
    return new Promise((resolve, reject) => {
      const id = this._nextId++;
      if (!this._send({ ...msg, id })) {
        reject(new RoomError('disconnected', 'not connected'));
        return;
      }
      const timer = setTimeout(() => {
        this._pending.delete(id);
        reject(new RoomError('timeout', `no answer to ${msg.type}`));
      }, REQUEST_TIMEOUT_MS);
      this._pending.set(id, { resolve, reject, timer });
    });
  }

  _rejectPending(err) {
    for (const { reject, timer } of this._pending.values()) {
      clearTimeout(timer);
      reject(err);
    }
    this._pending.clear();
  }

  // Connects and joins, following redirects; resolves with the `joined` message.
  async _connect() {
    let url = this._wsUrl;
    for (let redirects = 0; ; redirects++) {
      const reply = await this._open(url);
      if (reply.type !== 'redirect') return reply;
      if (redirects >= MAX_REDIRECTS) throw new RoomError('redirect_loop', 'too many redirects');
      url = reply.node.ws_url;
    }
  }

  // One socket: welcome, then join. Resolves with `joined` or `redirect` (this socket closed).
  _open(url) {
    return new Promise((resolve, reject) => {
      const sep = url.includes('?') ? '&' : '?';
      const ws = new WebSocket(`${url}${sep}access_token=${encodeURIComponent(this._token)}`);
      const epoch = ++this._epoch;
      this._ws = ws;
      let settled = false;
      let refusal = null; // an error that came without a request: the token's
      const fail = (err) => {
        if (settled) return;
        settled = true;
        if (epoch === this._epoch) {
          this._epoch++;
          this._ws = null;
          ws.close(1000, 'join failed');
        }
        reject(err);
      };
      ws.onmessage = (e) => {
        if (epoch !== this._epoch) return;
        let msg;
        try {
          msg = JSON.parse(e.data);
        } catch {
          return;
        }
        if (msg.type === 'error' && msg.id === undefined && !settled) {
          refusal = msg;
          return;
        }
        if (msg.type !== 'welcome') {
          this._enqueue(msg, epoch);
          return;
        }
        this.identity = msg.participant;
        const join = { type: 'join', auto_subscribe: this._autoSubscribe };
        this._request(join).then((reply) => {
          if (settled) return;
          settled = true;
          if (reply.type === 'redirect') {
            this._epoch++;
            ws.close(1000, 'redirected');
          }
          resolve(reply);
        }, fail);
      };
      ws.onclose = (e) => {
        if (epoch !== this._epoch) return;
        this._epoch++; // what is still under way for this socket stops
        this._ws = null;
        this._rejectPending(new RoomError('disconnected', `signaling closed (${e.code})`));
        if (!settled) {
          const code = refusal?.code ?? (e.code === 4001 ? 'bad_token' : 'disconnected');
          const message = refusal?.message ?? `signaling closed (${e.code})`;
          fail(new RoomError(code, message, !FATAL_CODES.has(code)));
        } else if (!this._left) {
          // Media keeps flowing without signaling: the peer connections stay up, and the
          // server resumes them when this socket's successor joins (joined.resumed).
          this._scheduleReconnect();
        }
      };
    });
  }

  _scheduleReconnect() {
    if (this._left || this._retryTimer) return;
    // Exponential backoff with jitter: 250 ms doubling to 5 s, each wait drawn from [d/2, d].
    const d = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** this._attempt);
    const delayMs = Math.round(d / 2 + (Math.random() * d) / 2);
    this._attempt++;
    this._emit('reconnecting', { attempt: this._attempt, delayMs });
    this._retryTimer = setTimeout(async () => {
      this._retryTimer = null;
      let joined;
      try {
        joined = await this._connect();
      } catch (err) {
        if (this._left) return;
        if (FATAL_CODES.has(err.code) || err.retryable === false) {
          this._left = true;
          this._teardownMedia();
          this._emit('error', { code: err.code, message: err.message });
          return;
        }
        this._scheduleReconnect();
        return;
      }
      this._attempt = 0;
      this._emit('reconnected', { joined });
      const live = this._publisher?.connectionState === 'connected' && this._published.size > 0;
      if (this._stream && !(joined.resumed && live)) {
        this._publish().catch((err) => {
          this._emit('error', { code: err.code ?? 'publish_failed', message: err.message });
        });
      }
    }, delayMs);
  }

  // Server messages take effect one at a time, in the order sent: an offer's negotiation (which
  // awaits the browser) ends before the events after it apply, so an older SDP cannot revive a
  // track that a later track_unpublished ended.
  _enqueue(msg, epoch) {
    this._inbox = this._inbox.then(async () => {
      if (epoch !== this._epoch) return;
      try {
        await this._onMessage(msg);
      } catch (err) {
        if (epoch !== this._epoch) return;
        this._emit('error', { code: `bad_${msg.type}`, message: String(err?.message ?? err) });
      }
    });
  }

  // Every error reaches the application once: as the rejection of the call that caused it, or
  // as an 'error' event.
  _onMessage(msg) {
    if (msg.id !== undefined && this._pending.has(msg.id)) {
      const { resolve, reject, timer } = this._pending.get(msg.id);
      this._pending.delete(msg.id);
      clearTimeout(timer);
      if (msg.type === 'error') {
        reject(new RoomError(msg.code, msg.message, msg.retryable));
        return;
      }
      resolve(msg);
    }
    switch (msg.type) {
      case 'error':
        this._emit('error', { code: msg.code, message: msg.message, retryable: msg.retryable });
        break;
      case 'joined':
        this._applyJoined(msg);
        break;
      case 'participant_joined':
        this._addParticipant(msg.participant);
        break;
      case 'participant_left':
        this._removeParticipant(msg.participant);
        break;
      case 'track_published':
        this._addTrack(msg);
        break;
      case 'track_unpublished':
        this.participants.get(msg.participant)?.tracks.delete(msg.track);
        this._endRemote(remoteKey(msg.participant, msg.track));
        break;
      case 'track_muted': {
        if (msg.participant === this.identity) break;
        const t = this.participants.get(msg.participant)?.tracks.get(msg.track);
        if (t) t.muted = msg.muted;
        const detail = { identity: msg.participant, trackId: msg.track, kind: t?.kind, muted: msg.muted };
        this._emit('track_muted', detail);
        break;
      }
      case 'offer':
        return this._answer(msg);
      case 'layers':
        // Dynacast: encode only the simulcast layers some subscriber takes, or, for layers
        // inside one stream (SVC), only the spatial layers up to `spatial`.
        if (msg.spatial !== undefined) {
          this._setSpatialLayers(msg.track, msg.spatial).catch(() => {});
          this._emit('layers', { track: msg.track, spatial: msg.spatial });
          break;
        }
        this._setActiveLayers(msg.track, msg.active ?? []).catch(() => {});
        this._emit('layers', { track: msg.track, active: msg.active ?? [] });
        break;
      case 'speakers':
        // The room's active speakers, loudest first (may be empty: nobody speaks).
        this.speakers = (msg.speakers ?? []).map((s) => s.participant);
        this._emit('speakers', { speakers: msg.speakers ?? [] });
        break;
      case 'media_reset':
        // The server's data plane restarted and lost every session: start the media over (the
        // others do too; their tracks come back with track_published).
        this._teardownMedia();
        for (const p of this.participants.values()) p.tracks.clear();
        this._emit('media_reset', {});
        if (this._stream) {
          this._publish().catch((err) => {
            this._emit('error', { code: err.code ?? 'publish_failed', message: err.message });
          });
        }
        break;
      case 'left':
        // Another connection joined with our identity: it wins, and we must not fight it.
        if (msg.reason === 'replaced' && !this._left) {
          this._emit('error', { code: 'replaced', message: 'this identity joined from elsewhere' });
          this._close(false);
        }
        break;
      default:
        break; // unknown events are for later versions
    }
  }

  // --- participants ---

  _addParticipant(identity) {
    if (identity === this.identity || this.participants.has(identity)) return;
    this.participants.set(identity, { identity, tracks: new Map() });
    this._emit('participant_joined', { identity });
  }

  _removeParticipant(identity) {
    if (!this.participants.has(identity)) return;
    for (const e of this.remoteTracks()) {
      if (e.identity === identity) this._endRemote(remoteKey(e.identity, e.trackId));
    }
    this.participants.delete(identity);
    this._emit('participant_left', { identity });
  }

  _addTrack({ participant, track, kind, muted, source }) {
    if (participant === this.identity) return;
    this._addParticipant(participant);
    this.participants.get(participant).tracks.set(track, { kind, muted: !!muted, source });
  }

  // `joined` lists who is here now: after a reconnect, the differences become events. A server
  // that forgot our media (resumed: false) gets new peer connections; the old ones go here, in
  // message order, so that the offers after this `joined` meet a fresh subscriber.
  _applyJoined(msg) {
    if (this._joined && !msg.resumed) this._teardownMedia();
    this.room = msg.room;
    this.identity = msg.participant;
    const present = new Set(msg.participants ?? []);
    for (const t of msg.tracks ?? []) present.add(t.participant);
    for (const identity of [...this.participants.keys()]) {
      if (!present.has(identity)) this._removeParticipant(identity);
    }
    for (const identity of present) this._addParticipant(identity);
    for (const p of this.participants.values()) p.tracks.clear();
    for (const t of msg.tracks ?? []) this._addTrack(t);
  }

  // --- media ---

  _peerConnection(name) {
    const pc = new RTCPeerConnection(this._rtcConfig);
    pc.onconnectionstatechange = () => {
      if (this[`_${name}`] === pc) this._emit('connection_state', { pc: name, state: pc.connectionState });
    };
    // RFC 8445 §9: a failed ICE (the network changed under it) restarts rather than ending
    // the call; the server keeps the session, so media resumes on the new pair.
    pc.oniceconnectionstatechange = () => {
      if (this[`_${name}`] !== pc || pc.iceConnectionState !== 'failed' || this._left) return;
      const restart = name === 'publisher' ? this._publish({ iceRestart: true })
        : this._request({ type: 'restart_ice' });
      restart.catch((err) => this._emit('error', { code: err.code ?? 'ice_restart', message: String(err.message ?? err) }));
    };
    // The server is ICE-lite and ignores these; sent so that a full-ICE server could use them.
    pc.onicecandidate = (e) => {
      if (e.candidate?.candidate && this[`_${name}`] === pc) {
        const { candidate, sdpMid } = e.candidate;
        this._send({ type: 'candidate', pc: name, candidate, sdp_mid: sdpMid });
      }
    };
    return pc;
  }

  async _publish({ iceRestart = false } = {}) {
    const epoch = this._epoch;
    const pc = this._publisher ?? (this._publisher = this._peerConnection('publisher'));
    const sending = new Set(pc.getSenders().map((s) => s.track));
    for (const track of this._stream.getTracks()) {
      if (sending.has(track)) continue;
      const init = { direction: 'sendonly', streams: [this._stream] };
      if (track.kind === 'video' && this._simulcast) {
        // Lowest first: the server takes the a=simulcast order as low to high.
        init.sendEncodings = [
          { rid: 'q', scaleResolutionDownBy: 4, maxBitrate: 150_000 },
          { rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 500_000 },
          { rid: 'f', maxBitrate: 1_500_000 },
        ];
      } else if (track.kind === 'video' && this._svc) {
        init.sendEncodings = [{ scalabilityMode: this._svc }];
      }
      const transceiver = pc.addTransceiver(track, init);
      if (track.kind === 'video') this._preferVideoCodec(transceiver);
    }
    if (this._screen && !sending.has(this._screen)) {
      // Two layers (full and half size) where the camera has three: a screen is read at its full
      // size, and a subscriber whose link cannot take it gets the half.
      const init = { direction: 'sendonly', streams: [this._stream] };
      if (this._simulcast) {
        init.sendEncodings = [
          { rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 600_000 },
          { rid: 'f', maxBitrate: 2_500_000 },
        ];
      }
      this._preferVideoCodec(pc.addTransceiver(this._screen, init));
    }
    await pc.setLocalDescription(await pc.createOffer({ iceRestart }));
    let reply;
    try {
      const layers = layerSizes(pc, this._svc, this._screen);
      const screen = pc.getTransceivers()
        .filter((t) => this._screen && t.sender.track === this._screen && t.mid != null)
        .map((t) => t.mid);
      reply = await this._request({ type: 'publish', sdp: pc.localDescription.sdp, layers, screen });
    } catch (err) {
      if (epoch === this._epoch && pc.signalingState === 'have-local-offer') {
        await pc.setLocalDescription({ type: 'rollback' });
      }
      throw err;
    }
    if (epoch !== this._epoch) return []; // the socket dropped: the reconnect publishes again
    await pc.setRemoteDescription({ type: 'answer', sdp: reply.sdp });
    this._published.clear();
    for (const t of reply.tracks ?? []) {
      this._published.set(t.track, { kind: t.kind, mid: t.mid });
      // A mute chosen before the server knew the track.
      if (this._muted[t.kind]) this._send({ type: 'mute', track: t.track, muted: true });
    }
    return reply.tracks ?? [];
  }

  async _setActiveLayers(trackId, active) {
    const mid = this._published.get(trackId)?.mid;
    const transceiver = this._publisher?.getTransceivers().find((t) => t.mid === mid);
    const sender = transceiver?.sender;
    if (!sender) return;
    const params = sender.getParameters();
    let changed = false;
    for (const e of params.encodings ?? []) {
      const on = e.rid == null || active.includes(e.rid);
      if (e.active !== on) {
        e.active = on;
        changed = true;
      }
    }
    if (changed) await sender.setParameters(params);
  }

  // SVC dynacast: the publisher's scalabilityMode with spatial layers 0..spatial of the svc
  // option's (L3T3_KEY -> L2T3_KEY -> L1T3, the temporal layers kept).
  async _setSpatialLayers(trackId, spatial) {
    const mid = this._published.get(trackId)?.mid;
    const sender = this._publisher?.getTransceivers().find((t) => t.mid === mid)?.sender;
    const mode = /^([LS])([1-3])T([1-3])(.*)$/.exec(this._svc ?? '');
    if (!sender || !mode) return;
    const layers = Math.min(Number(mode[2]), spatial + 1);
    const wanted = layers === 1 ? `L1T${mode[3]}` : `${mode[1]}${layers}T${mode[3]}${mode[4]}`;
    const params = sender.getParameters();
    const e = params.encodings?.[0];
    if (!e || e.scalabilityMode === wanted) return;
    e.scalabilityMode = wanted;
    await sender.setParameters(params);
  }

  // The videoCodec option: its formats first (in the browser's order, e.g. VP9 profile 0 before
  // profile 2, H264 packetization-mode 1 before 0), then everything else the browser sends
  // (rtx, red, ulpfec and the other codecs) as it ordered them.
  _preferVideoCodec(transceiver) {
    if (!this._videoCodec || typeof transceiver.setCodecPreferences !== 'function') return;
    const codecs = RTCRtpSender.getCapabilities?.('video')?.codecs ?? [];
    const wanted = (c) => c.mimeType.toLowerCase() === this._videoCodec;
    if (!codecs.some(wanted)) return;
    transceiver.setCodecPreferences([...codecs.filter(wanted), ...codecs.filter((c) => !wanted(c))]);
  }

  async _answer({ seq, sdp }) {
    const epoch = this._epoch;
    if (!this._subscriber) {
      const pc = this._peerConnection('subscriber');
      pc.ontrack = (e) => {
        const mid = e.transceiver?.mid;
        if (mid != null && e.streams[0]) this._streamsByMid.set(mid, e.streams[0]);
      };
      this._subscriber = pc;
    }
    const pc = this._subscriber;
    await pc.setRemoteDescription({ type: 'offer', sdp });
    if (epoch !== this._epoch) return;
    this._syncRemote(sectionsByMid(sdp));
    await pc.setLocalDescription(await pc.createAnswer());
    if (epoch !== this._epoch) return;
    this._send({ type: 'answer', seq, sdp: pc.localDescription.sdp });
  }

  // After each offer: a receiving m-section's msid is a remote track; one that went inactive
  // (or now carries another msid) ended. `track` events of the peer connection are not enough:
  // a transceiver the server reuses for another track of the same publisher fires none.
  _syncRemote(sections) {
    const live = new Set();
    for (const transceiver of this._subscriber.getTransceivers()) {
      const mid = transceiver.mid;
      const s = sections.get(mid);
      const receiving = s && !s.rejected && transceiver.currentDirection !== 'stopped' &&
        (s.direction === 'sendonly' || s.direction === 'sendrecv');
      const track = transceiver.receiver.track;
      const identity = s?.streamId ?? this._streamsByMid.get(mid)?.id;
      const trackId = s?.trackId ?? track.id;
      if (!receiving || !identity || identity === '-') continue;
      const key = remoteKey(identity, trackId);
      live.add(key);
      if (this._remote.has(key)) continue;
      let stream = this._streamsByMid.get(mid);
      if (!stream || stream.id !== identity || !stream.getTracks().includes(track)) {
        stream = new MediaStream([track]);
      }
      const entry = { identity, trackId, kind: track.kind, mid, track, stream, transceiver };
      this._remote.set(key, entry);
      stream.addEventListener('removetrack', (e) => {
        if (e.track === track && this._remote.get(key) === entry) this._endRemote(key);
      });
      this._addParticipant(identity);
      const source = this.participants.get(identity)?.tracks.get(trackId)?.source;
      entry.source = source ?? (track.kind === 'video' ? 'camera' : 'microphone');
      this._emit('track', { identity, trackId, kind: entry.kind, track, stream, source: entry.source });
    }
    for (const key of [...this._remote.keys()]) {
      if (!live.has(key)) this._endRemote(key);
    }
  }

  _endRemote(key) {
    const e = this._remote.get(key);
    if (!e) return;
    this._remote.delete(key);
    this._emit('track_ended', { identity: e.identity, trackId: e.trackId, kind: e.kind, track: e.track });
  }

  // The server forgot our media (it restarted without its state, or the grace after a dropped
  // socket passed): both peer connections start over.
  _teardownMedia() {
    for (const key of [...this._remote.keys()]) this._endRemote(key);
    this._publisher?.close();
    this._subscriber?.close();
    this._publisher = null;
    this._subscriber = null;
    this._published.clear();
    this._streamsByMid.clear();
  }
}
