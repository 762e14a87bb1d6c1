/**
 * The SSRF guard. Address rules are tested as a pure function: no packet goes to any address but
 * loopback. Real refusals use targets on 127.0.0.1 and [::1], and a host name that a test
 * resolver maps to 127.0.0.1, each with a local server that counts the connections it gets.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { isPublicAddress, sameAddress, specialRange } from '../../src/net/addresses.js';
import { allowListProblem, HostPolicy, type Resolver } from '../../src/net/host-policy.js';
import { HttpClient } from '../../src/net/http-client.js';
import { DeliveryTimeoutError, RefusedTargetError } from '../../src/delivery-errors.js';
import { startHttpPeer, type HttpPeer } from '../fixtures/http-peer.js';

describe('the address rules', () => {
  const refused: [string, RegExp][] = [
    ['10.0.0.1', /private/],
    ['10.255.255.255', /private/],
    ['172.16.0.1', /private/],
    ['172.31.255.254', /private/],
    ['192.168.1.1', /private/],
    ['127.0.0.1', /loopback/],
    ['127.10.20.30', /loopback/],
    ['169.254.169.254', /link-local, where cloud metadata/],
    ['169.254.0.1', /link-local/],
    ['100.64.0.1', /CGNAT/],
    ['100.100.100.200', /CGNAT/],
    ['0.0.0.0', /unspecified/],
    ['0.1.2.3', /unspecified/],
    ['192.0.0.192', /IETF protocol assignments/],
    ['192.0.2.10', /documentation/],
    ['198.51.100.7', /documentation/],
    ['203.0.113.9', /documentation/],
    ['198.18.0.1', /benchmarking/],
    ['192.88.99.1', /6to4 relay/],
    ['224.0.0.1', /multicast/],
    ['239.255.255.250', /multicast/],
    ['240.0.0.1', /reserved/],
    ['255.255.255.255', /reserved/],
    ['::', /unspecified/],
    ['::1', /loopback/],
    ['0:0:0:0:0:0:0:1', /loopback/],
    ['fc00::1', /unique-local/],
    ['fd00:ec2::254', /unique-local/],
    ['fe80::1', /link-local/],
    ['fe80::1%eth0', /link-local/],
    ['fec0::1', /site-local/],
    ['ff02::1', /multicast/],
    ['::ffff:10.0.0.1', /IPv4-mapped of 10\.0\.0\.1, private/],
    ['::ffff:127.0.0.1', /IPv4-mapped of 127\.0\.0\.1, loopback/],
    ['::ffff:a9fe:a9fe', /IPv4-mapped of 169\.254\.169\.254/],
    ['::ffff:0.0.0.0', /IPv4-mapped of 0\.0\.0\.0, unspecified/],
    ['64:ff9b::10.0.0.1', /NAT64 of 10\.0\.0\.1/],
    ['64:ff9b:1::1', /local-use NAT64/],
    ['2002:c0a8:0101::1', /6to4 of 192\.168\.1\.1, private/],
    ['::10.0.0.1', /IPv4-compatible/],
    ['100::1', /discard-only/],
    ['2001:db8::1', /documentation/],
    ['2001::1', /IETF protocol assignments/],
    ['3fff::1', /documentation/],
    ['5f00::1', /SRv6/],
    ['4000::1', /reserved \(outside 2000::\/3\)/],
    ['localhost', /not an IP address/],
    ['', /not an IP address/],
  ];
  for (const [address, why] of refused) {
    it(`refuses ${address || '""'}`, () => {
      assert.match(specialRange(address) ?? 'public', why);
      assert.equal(isPublicAddress(address), false);
    });
  }

  it('lets public unicast addresses through', () => {
    for (const address of [
      '8.8.8.8',
      '1.1.1.1',
      '93.184.216.34',
      '172.32.0.1',
      '100.128.0.1',
      '169.255.0.1',
      '2606:4700:4700::1111',
      '2a00:1450:4001:80b::200e',
      '::ffff:8.8.8.8',
      '64:ff9b::8.8.8.8',
    ]) {
      assert.equal(specialRange(address), null, address);
    }
  });

  it('compares addresses whatever their spelling', () => {
    assert.ok(sameAddress('::1', '0:0:0:0:0:0:0:1'));
    assert.ok(sameAddress('[::1]', '::1'));
    assert.ok(sameAddress('127.0.0.1', '::ffff:127.0.0.1'));
    assert.ok(!sameAddress('127.0.0.1', '127.0.0.2'));
    assert.ok(!sameAddress('example.com', 'example.com'));
  });
});

describe('the host policy', () => {
  it('judges IP literals before connecting, and allows listed names and addresses', () => {
    const policy = new HostPolicy(['127.0.0.1', 'Hooks.Internal', '::1']);
    assert.doesNotThrow(() => policy.checkHost('127.0.0.1'));
    assert.doesNotThrow(() => policy.checkHost('[::1]'));
    assert.doesNotThrow(() => policy.checkHost('hooks.internal'));
    assert.doesNotThrow(() => policy.checkHost('example.com'), 'names are judged on lookup');
    assert.throws(() => policy.checkHost('127.0.0.2'), RefusedTargetError);
    assert.throws(
      () => new HostPolicy().checkHost('[::ffff:7f00:1]'),
      /::ffff:7f00:1 is not a public address: IPv4-mapped of 127\.0\.0\.1, loopback/,
    );
  });

  it('takes the allow-list entries that can match a URL host, and each one does', () => {
    for (const entry of [
      '127.0.0.1',
      '::1',
      '[::1]',
      '10.0.0.7',
      'Hooks.Internal',
      'hooks.internal.',
      'my_service',
      'localhost',
      '127.0.0.1.',
    ]) {
      assert.equal(allowListProblem(entry), null, entry);
      const host = entry.includes(':') && !entry.startsWith('[') ? `[${entry}]` : entry;
      const { hostname } = new URL(`http://${host}:8080/path`);
      const policy = new HostPolicy([entry]);
      assert.ok(policy.lists(hostname), `${entry} matches ${hostname}`);
      assert.doesNotThrow(() => policy.checkHost(hostname), entry);
    }
    assert.equal(allowListProblem('fe80::1%eth0'), null, 'an address with its zone');
  });

  it('refuses allow-list entries that could never match, saying what to write', () => {
    const never: [string, RegExp][] = [
      ['http://x/y', /is not a host name or an IP address: list hosts alone, without a scheme/],
      ['hooks.internal:8080', /is not a host name or an IP address/],
      ['*.internal', /is not a host name or an IP address/],
      ['10.0.0.0/8', /is not a host name or an IP address/],
      ['a..b', /is not a host name or an IP address/],
      ['999.999.1.1', /is read as an IP address in URLs, and is not a valid one/],
      ['127.1', /is read as the IP address 127\.0\.0\.1 in URLs; list it that way/],
      ['0x7f.0.0.1', /is read as the IP address 127\.0\.0\.1 in URLs/],
      ['bücher.example', /is written xn--bcher-kva\.example in URLs; list it that way/],
    ];
    for (const [entry, message] of never) assert.match(allowListProblem(entry) ?? 'null', message);
  });

  it('refuses a name when any of its addresses is not public', async () => {
    const resolve: Resolver = async () => [
      { address: '8.8.8.8', family: 4 },
      { address: '10.0.0.1', family: 4 },
    ];
    const lookup = new HostPolicy().lookup(resolve);
    const error = await new Promise<Error | null>((done) =>
      lookup('mixed.test', { all: true }, (e) => done(e)),
    );
    assert.ok(error instanceof RefusedTargetError);
    assert.match(error.message, /mixed\.test: it resolves to 10\.0\.0\.1 is not a public address/);
  });
});

describe('the guarded HTTP client, against loopback servers that count connections', () => {
  let v4: HttpPeer;
  let v6: HttpPeer;
  before(async () => {
    v4 = await startHttpPeer();
    v6 = await startHttpPeer(undefined, '::1');
  });
  after(async () => {
    await Promise.all([v4.close(), v6.close()]);
  });

  /** Maps every name to 127.0.0.1, as a rebinding DNS server would. */
  const toLoopback: Resolver = async () => [{ address: '127.0.0.1', family: 4 }];

  function post(client: HttpClient, url: string, timeout = 2000) {
    return client.post({
      url: new URL(url),
      headers: { 'content-type': 'application/json' },
      body: '{}',
      timeout,
      signal: new AbortController().signal,
    });
  }

  it('refuses 127.0.0.1, [::1] and a name that resolves to 127.0.0.1: zero connections', async () => {
    const client = new HttpClient({ policy: new HostPolicy(), resolve: toLoopback });
    const before4 = v4.connections();
    const before6 = v6.connections();
    await assert.rejects(post(client, `${v4.url}/hook`), /127\.0\.0\.1 is not a public address/);
    await assert.rejects(post(client, `${v6.url}/hook`), /::1 is not a public address: loopback/);
    await assert.rejects(
      post(client, `http://rebind.test:${v4.port}/hook`),
      (error: Error) =>
        error instanceof RefusedTargetError &&
        /rebind\.test: it resolves to 127\.0\.0\.1/.test(error.message),
    );
    await assert.rejects(post(client, `http://localhost:${v4.port}/`), RefusedTargetError);
    assert.equal(v4.connections() - before4, 0);
    assert.equal(v6.connections() - before6, 0);
  });

  it('lets the allow-listed target through, and only that one', async () => {
    const client = new HttpClient({ policy: new HostPolicy(['127.0.0.1']), resolve: toLoopback });
    const before6 = v6.connections();
    const response = await post(client, `${v4.url}/hook`);
    assert.equal(response.status, 204);
    assert.equal((await v4.nextRequest()).url, '/hook');
    await assert.rejects(post(client, `${v6.url}/hook`), RefusedTargetError);
    assert.equal(v6.connections() - before6, 0);
  });

  it('lets an allow-listed host name through whatever it resolves to', async () => {
    const client = new HttpClient({ policy: new HostPolicy(['hooks.test']), resolve: toLoopback });
    const response = await post(client, `http://hooks.test:${v4.port}/named`);
    assert.equal(response.status, 204);
    assert.equal((await v4.nextRequest()).headers.host, `hooks.test:${v4.port}`);
  });

  it('does not follow redirects', async () => {
    const peer = await startHttpPeer((_request, response) =>
      response.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data/' }).end(),
    );
    try {
      const client = new HttpClient({ policy: new HostPolicy(['127.0.0.1']) });
      const response = await post(client, `${peer.url}/hook`);
      assert.equal(response.status, 302);
      assert.equal(peer.requests.length, 1);
    } finally {
      await peer.close();
    }
  });

  it('times out a peer that does not answer, and stops on the task signal', async () => {
    const peer = await startHttpPeer(() => {
      // never answers
    });
    try {
      const client = new HttpClient({ policy: new HostPolicy(['127.0.0.1']) });
      await assert.rejects(post(client, peer.url, 100), DeliveryTimeoutError);
      const controller = new AbortController();
      const pending = client.post({
        url: new URL(peer.url),
        headers: {},
        body: 'x',
        timeout: 10_000,
        signal: controller.signal,
      });
      await peer.nextRequest();
      await peer.nextRequest();
      const reason = new Error('canceled');
      controller.abort(reason);
      await assert.rejects(pending, (error) => error === reason);
    } finally {
      await peer.close();
    }
  });
});
