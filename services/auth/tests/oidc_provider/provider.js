// A real upstream OpenID Connect provider (oidc-provider) for the auth service's federation
// tests. It listens on 127.0.0.1 on a free port, then prints one JSON line on stdout:
//   {"issuer":"http://127.0.0.1:PORT"}
//
// Environment:
//   CLIENT_ID, CLIENT_SECRET  the platform's client at this provider (client_secret_basic)
//   REDIRECT_URIS             comma-separated redirect URIs registered for it
//
// Sign-in and consent are plain HTTP endpoints a test drives:
//   GET  /interaction/:uid          -> {"uid","prompt","details"} (JSON)
//   POST /interaction/:uid/login    form login=&password=  -> 303 back to the authorization
//   POST /interaction/:uid/confirm  grants the requested scopes -> 303 back
import http from 'node:http';
import { randomBytes } from 'node:crypto';

import Provider from 'oidc-provider';
import { exportJWK, generateKeyPair } from 'jose';

// Fixed test accounts: password, then the claims the provider releases.
const ACCOUNTS = {
  alice: {
    password: 'alice-upstream-password',
    claims: { email: 'alice@example.com', email_verified: true, name: 'Alice Upstream' },
  },
  mallory: {
    password: 'mallory-upstream-password',
    claims: { email: 'mallory@elsewhere.test', email_verified: true, name: 'Mallory' },
  },
  newbie: {
    password: 'newbie-upstream-password',
    claims: { email: 'newbie@acme.test', email_verified: true, name: 'New Person' },
  },
  unverified: {
    password: 'unverified-upstream-password',
    claims: { email: 'alice@example.com', email_verified: false, name: 'Not Alice' },
  },
};

const clientId = process.env.CLIENT_ID ?? 'aurumai';
const clientSecret = process.env.CLIENT_SECRET ?? 'aurumai-upstream-secret';
const redirectUris = (process.env.REDIRECT_URIS ?? '').split(',').filter(Boolean);

const server = http.createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const { privateKey } = await generateKeyPair('RS256', { extractable: true });
const jwk = { ...(await exportJWK(privateKey)), kid: 'upstream-1', alg: 'RS256', use: 'sig' };

const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: redirectUris,
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  jwks: { keys: [jwk] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
  },
  pkce: { required: () => true, methods: ['S256'] },
  features: { devInteractions: { enabled: false } },
  async findAccount(ctx, sub) {
    const account = ACCOUNTS[sub];
    if (!account) return undefined;
    return { accountId: sub, claims: async () => ({ sub, ...account.claims }) };
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
});
provider.on('server_error', (ctx, err) => console.error('server_error', err));

const readForm = (req) => new Promise((resolve, reject) => {
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (c) => { body += c; });
  req.on('end', () => resolve(new URLSearchParams(body)));
  req.on('error', reject);
});

const json = (res, status, value) => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(value));
};

async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) return json(res, 400, { error: 'wrong interaction' });
  const { prompt, params, session, grantId } = details;
  if (req.method === 'GET' && !action) {
    return json(res, 200, { uid, prompt: prompt.name, details: prompt.details });
  }
  if (req.method === 'POST' && action === 'login' && prompt.name === 'login') {
    const form = await readForm(req);
    const account = ACCOUNTS[form.get('login')];
    if (!account || account.password !== form.get('password')) {
      return json(res, 401, { error: 'invalid credentials' });
    }
    return provider.interactionFinished(req, res, { login: { accountId: form.get('login') } }, {
      mergeWithLastSubmission: false,
    });
  }
  if (req.method === 'POST' && action === 'confirm' && prompt.name === 'consent') {
    const grant = grantId
      ? await provider.Grant.find(grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    const d = prompt.details;
    if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
    if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
    if (d.missingResourceScopes) {
      for (const [indicator, scope] of Object.entries(d.missingResourceScopes)) {
        grant.addResourceScope(indicator, scope.join(' '));
      }
    }
    const result = { consent: { grantId: await grant.save() } };
    return provider.interactionFinished(req, res, result, { mergeWithLastSubmission: true });
  }
  return json(res, 400, { error: `cannot ${req.method} ${action ?? ''} at prompt ${prompt.name}` });
}

const callback = provider.callback();
server.on('request', (req, res) => {
  const m = /^\/interaction\/([^/?]+)(?:\/(login|confirm))?(?:\?.*)?$/.exec(req.url);
  if (!m) return callback(req, res);
  return interaction(req, res, m[1], m[2]).catch((err) => {
    json(res, 400, { error: err.name ?? 'error' });
  });
});

const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdout.on('error', () => {}); // the test may stop reading
process.stdout.write(`${JSON.stringify({ issuer })}\n`);
