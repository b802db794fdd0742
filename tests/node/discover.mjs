// Discovers a Tessera issuer with openid-client, by RFC 8414 (algorithm "oauth2": the
// well-known segment inserted before the issuer's path) or by OpenID Connect Discovery
// ("oidc"), and prints the server metadata it accepted as JSON.
// Usage: node discover.mjs <issuer> <client_id> <oauth2|oidc>
import * as client from 'openid-client';

const [issuer, clientId, algorithm] = process.argv.slice(2);
const config = await client.discovery(new URL(issuer), clientId, undefined, undefined, {
  algorithm,
  // The e2e server listens on plain http on the loopback address.
  execute: [client.allowInsecureRequests],
});
console.log(JSON.stringify(config.serverMetadata()));
