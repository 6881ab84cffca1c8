// Two RTCPeerConnections in one headless Chromium page, connected over 127.0.0.1 host
// candidates, sending fake camera and microphone media for a few seconds. Prints the SDP offer
// and the receiver's stats as JSON. Run inside a network namespace whose only interface is lo.
const { chromium } = require('playwright-core');
const fs = require('fs');
const os = require('os');
const path = require('path');
const http = require('http');

const FLAGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage',
  '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
  '--disable-features=WebRtcHideLocalIpsWithMdns,MediaRouter,DialMediaRouteProvider,OptimizationHints,Translate',
  '--media-router=0', '--no-pings', '--disable-domain-reliability', '--disable-client-side-phishing-detection',
  '--disable-default-apps', '--disable-breakpad',
  '--allow-loopback-in-peer-connection', '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
];

(async () => {
  const seconds = Number(process.argv[2] || 4);
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'rl-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/lib/chromium/chromium', headless: true, args: FLAGS,
  });
  // getUserMedia needs a secure context: http://127.0.0.1 is one, about:blank is not.
  const server = http.createServer((req, res) => { res.end('<!doctype html><title>ringlane</title>'); });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const page = await context.newPage();
  await page.goto(`http://127.0.0.1:${server.address().port}/`);
  const result = await page.evaluate(async (secs) => {
    const pc1 = new RTCPeerConnection();
    const pc2 = new RTCPeerConnection();
    pc1.onicecandidate = (e) => e.candidate && pc2.addIceCandidate(e.candidate);
    pc2.onicecandidate = (e) => e.candidate && pc1.addIceCandidate(e.candidate);
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 320, height: 240 } });
    stream.getTracks().forEach((t) => pc1.addTrack(t, stream));
    const offer = await pc1.createOffer();
    await pc1.setLocalDescription(offer);
    await pc2.setRemoteDescription(offer);
    const answer = await pc2.createAnswer();
    await pc2.setLocalDescription(answer);
    await pc1.setRemoteDescription(answer);
    const deadline = Date.now() + 10000;
    while (pc1.connectionState !== 'connected' && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    await new Promise((r) => setTimeout(r, secs * 1000));
    const stats = [];
    (await pc2.getStats()).forEach((s) => {
      if (s.type === 'inbound-rtp') stats.push({ kind: s.kind, ssrc: s.ssrc, packets: s.packetsReceived, framesDecoded: s.framesDecoded });
    });
    return { state: pc1.connectionState, offer: offer.sdp, inbound: stats };
  }, seconds);
  console.log(JSON.stringify(result));
  await context.close();
  server.close();
})().catch((e) => { console.error(e); process.exit(1); });
