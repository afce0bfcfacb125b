/** Clients for the token tests: one raw POST (status, headers, body), and the SDK's client with a bearer token. */
import { request } from 'node:http';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';

/** One POST to the endpoint, outside the SDK: its status and body. */
export function post(url: URL, headers: Record<string, string>, body = '{}'): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), headers: res.headers }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

export async function connect(url: URL, token: string | undefined): Promise<Client> {
  const client = new Client({ name: 'apiary-token-test', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(url, token === undefined ? {} : { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
  return client;
}

