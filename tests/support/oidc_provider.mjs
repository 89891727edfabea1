// A real OpenID Connect provider for the tests: the certified `oidc-provider` from npm
// (installed by scripts/test into target/test-tools/oidc-provider), with one confidential
// client, PKCE required, and its built-in development login form (any login is accepted
// and becomes the account id; the password is not checked).
//
//   node tests/support/oidc_provider.mjs --modules DIR --port PORT --client-id ID \
//        --client-secret SECRET --redirect-uri URI [--accounts FILE]
//
// Every account has the claims `preferred_username` (scope profile) and `groups` (scope
// groups). The static accounts: alice (groups packager and infra), bob (no groups),
// carol.login (username carol). A login not listed gets its login as username and no
// groups. With --accounts, that JSON file ({"alice": {"preferred_username": "alice",
// "groups": [...]}, ...}) is read at every sign-in and overrides the static set, so a test
// can change a person's groups between two sign-ins.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    modules: { type: 'string' },
    port: { type: 'string' },
    'client-id': { type: 'string' },
    'client-secret': { type: 'string' },
    'redirect-uri': { type: 'string' },
    accounts: { type: 'string' },
  },
});
for (const required of ['modules', 'port', 'client-id', 'client-secret', 'redirect-uri']) {
  if (!args[required]) {
    console.error(`oidc_provider.mjs: --${required} is required`);
    process.exit(2);
  }
}

const entry = join(args.modules, 'node_modules', 'oidc-provider', 'lib', 'index.js');
const { default: Provider } = await import(pathToFileURL(entry).href);

const STATIC = {
  alice: { preferred_username: 'alice', groups: ['packager', 'infra'] },
  bob: { preferred_username: 'bob', groups: [] },
  'carol.login': { preferred_username: 'carol', groups: ['qa'] },
};

function account(id) {
  let accounts = STATIC;
  if (args.accounts) {
    accounts = { ...STATIC, ...JSON.parse(readFileSync(args.accounts, 'utf8')) };
  }
  return accounts[id] ?? { preferred_username: id, groups: [] };
}

const issuer = `http://127.0.0.1:${args.port}`;
const provider = new Provider(issuer, {
  clients: [
    {
      client_id: args['client-id'],
      client_secret: args['client-secret'],
      redirect_uris: [args['redirect-uri']],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  // Every authorization request must carry a PKCE challenge, confidential client or not.
  pkce: { required: () => true },
  scopes: ['openid', 'profile', 'groups'],
  claims: {
    openid: ['sub'],
    profile: ['preferred_username', 'name'],
    groups: ['groups'],
  },
  // The ID token carries the scopes' claims too (as Keycloak's does), not only userinfo.
  conformIdTokenClaims: false,
  cookies: { keys: ['tidings-test-provider-cookie-key'] },
  features: { devInteractions: { enabled: true } },
  // The client is first-party: grant what it asks for, without a consent page.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) {
      return ctx.oidc.provider.Grant.find(grantId);
    }
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope(ctx.oidc.params.scope ?? 'openid');
    await grant.save();
    return grant;
  },
  async findAccount(_ctx, id) {
    return {
      accountId: id,
      async claims() {
        const { preferred_username, groups } = account(id);
        return { sub: id, preferred_username, name: preferred_username, groups };
      },
    };
  },
});

provider.listen(Number(args.port), '127.0.0.1', () => {
  console.log(`oidc provider listening at ${issuer}`);
});
