// A real OpenID Connect provider for the tests: npm's certified `oidc-provider`, with its
// development login page (any password; the login names an account in USERS_FILE).
//
//   PORT=0 ISSUER_HOST=127.0.0.1 CLIENT_ID=... CLIENT_SECRET=... REDIRECT_URIS=a,b \
//   USERS_FILE=users.json [CLOCK_OFFSET_S=-600] [ID_TOKEN_TTL_S=600] node provider.mjs
//
// USERS_FILE maps a login to its claims ({"alice": {"email": ..., "groups": [...]}}); it
// is read at every sign-in, so a test changes someone's groups by rewriting it.
// CLOCK_OFFSET_S runs the provider's clock that far off (a provider with a wrong clock
// issues tokens already expired by ours). Prints "listening <issuer>" when ready.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { generateKeyPair, exportJWK } from 'jose';
import Provider from 'oidc-provider';

const offset = Number(process.env.CLOCK_OFFSET_S || 0) * 1000;
if (offset) {
  const realNow = Date.now;
  Date.now = () => realNow() + offset;
}

const usersFile = process.env.USERS_FILE;
const users = () => JSON.parse(readFileSync(usersFile, 'utf8'));

// Keys of this process only: two providers never sign with the same key.
const { privateKey } = await generateKeyPair('RS256', { extractable: true });
const jwk = { ...(await exportJWK(privateKey)), kid: `k-${process.pid}`, alg: 'RS256', use: 'sig' };

const server = createServer();
await new Promise((resolve) => server.listen(Number(process.env.PORT || 0), '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: process.env.CLIENT_ID,
    client_secret: process.env.CLIENT_SECRET,
    redirect_uris: process.env.REDIRECT_URIS.split(','),
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_post',
  }],
  jwks: { keys: [jwk] },
  pkce: { required: () => true },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'given_name', 'family_name', 'preferred_username', 'groups'],
  },
  // The groups and profile go in the ID token itself, as Entra ID and Keycloak can do.
  conformIdTokenClaims: false,
  features: { devInteractions: { enabled: true } },
  ttl: { IdToken: Number(process.env.ID_TOKEN_TTL_S || 600) },
  cookies: { keys: ['test-cookie-key-not-secret'] },
  async findAccount(ctx, id) {
    const claims = users()[id];
    if (!claims) return undefined;
    return {
      accountId: id,
      async claims() {
        return { sub: id, preferred_username: id, email_verified: true, ...claims };
      },
    };
  },
  // A company provider does not ask its staff to consent to their own intranet.
  async loadExistingGrant(ctx) {
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope('openid email profile');
    await grant.save();
    return grant;
  },
});
provider.proxy = false;
server.on('request', provider.callback());
process.stdout.write(`listening ${issuer}\n`);
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0));
