// A separate service that accepts Tessera's access tokens knowing nothing but Tessera's URL: it discovers
// the JWKS from the issuer metadata and verifies tokens with jose. No shared secret, no database.
//   TESSERA_URL=http://127.0.0.1:8000 PORT=9000 node examples/resource-server/server.ts
import { createServer, type ServerResponse } from 'node:http'
import { createRemoteJWKSet, errors, jwtVerify } from 'jose'

const issuer = (process.env.TESSERA_URL ?? 'http://127.0.0.1:8000').replace(/\/+$/, '')
const audience = process.env.TESSERA_AUDIENCE ?? 'tessera'
const port = Number(process.env.PORT ?? 9000)

// RFC 8414 discovery: the issuer says where its keys are.
const metadata = (await (await fetch(`${issuer}/.well-known/oauth-authorization-server`)).json()) as {
  issuer: string
  jwks_uri: string
}
if (metadata.issuer !== issuer) throw new Error(`${issuer} says its issuer is ${metadata.issuer}`)
// Fetched on first use, cached, and refetched when a token names a kid it has not seen (a rotation).
const jwks = createRemoteJWKSet(new URL(metadata.jwks_uri))

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  const type = status >= 400 ? 'application/problem+json' : 'application/json'
  res.writeHead(status, { 'content-type': type, ...headers }).end(JSON.stringify(body))
}

const server = createServer(async (req, res) => {
  if (req.method !== 'GET' || req.url !== '/hello') return send(res, 404, { title: 'Not found', status: 404 })
  const token = /^Bearer (\S+)$/i.exec(req.headers.authorization ?? '')?.[1]
  try {
    if (!token) throw new errors.JWTInvalid('no bearer token')
    const { payload } = await jwtVerify(token, jwks, {
      issuer,
      audience,
      typ: 'at+jwt',
      // Never HS*: this service holds no secret, and must not accept a token "signed" with a public key.
      algorithms: ['EdDSA', 'ES256', 'RS256'],
      requiredClaims: ['exp', 'sub'],
    })
    send(res, 200, { hello: payload.username, sub: payload.sub, roles: payload.roles })
  } catch (error) {
    const expired = error instanceof errors.JWTExpired
    send(
      res,
      401,
      { title: expired ? 'The access token has expired' : 'The access token is not valid', status: 401 },
      { 'www-authenticate': 'Bearer error="invalid_token"' },
    )
  }
})

server.listen(port, '127.0.0.1', () => {
  const address = server.address()
  const actual = typeof address === 'object' && address ? address.port : port
  console.log(`resource server listening at http://127.0.0.1:${actual}, trusting ${issuer}`)
})
process.once('SIGTERM', () => server.close(() => process.exit(0)))
