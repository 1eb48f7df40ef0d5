// The layers of src/, lowest first, checked in CI (`npm run lint:imports`): a file may import only from its
// own folder and from folders in lower layers. Folders of one layer do not import each other. So no import
// cycle between folders can form, and the access layer can never come to depend on a feature.
// docs/architecture.md says what each layer holds and why.
const LAYERS = [
  ['lib'], //                  clock, ids, logger: imports nothing of the app
  ['config'], //               every setting, declared once
  ['db', 'redis'], //          storage and the shared Redis connections
  ['http'], //                 problem+json, the error handler, health routes
  ['metrics'], //              what GET /metrics serves: the interface features report through, prom-client
  ['webhooks'], //             the durable outbox of signed webhook deliveries, and its dispatcher
  ['events'], //               the security event log: recorded with the change it records, read by admins
  ['keys', 'rate-limits'], //  signing keys; the counters behind rate limits
  ['access'], //               the lower access layer: tokens, auth states, the auth and rate-limit hooks
  ['sessions'], //             sessions and refresh tokens
  ['users'], //                profiles and admin; ends sessions when a user is disabled
  ['auth'], //                 credentials: register, login, password change
  ['ROOT'], //                 app.ts, deps.ts, server.ts, modules.ts...: wires everything together
  ['cli'], //                  the tessera command, over the same config and deps
]

/** A folder as a path pattern; ROOT is the files directly in src/. */
const folder = (name) => (name === 'ROOT' ? '^src/[^/]+$' : `^src/${name}/`)

const layerRules = LAYERS.flatMap((layer, index) =>
  layer.flatMap((name) => {
    const sameOrAbove = LAYERS.slice(index)
      .flat()
      .filter((other) => other !== name)
    if (sameOrAbove.length === 0) return []
    return {
      name: `layer-${name}`,
      comment: `${name} may import only from lower layers: not from ${sameOrAbove.join(', ')}`,
      severity: 'error',
      from: { path: folder(name) },
      to: { path: sameOrAbove.map(folder).join('|') },
    }
  }),
)

// A folder missing from LAYERS would escape every rule above: each of src/'s folders must be listed.
const unlisted = {
  path: '^src/[^/]+/',
  pathNot: LAYERS.flat()
    .filter((name) => name !== 'ROOT')
    .map(folder),
}

module.exports = {
  forbidden: [
    ...layerRules,
    // A file of an unlisted folder is caught whether it imports, is imported, or neither.
    ...[
      { from: unlisted, to: {} },
      { from: { path: '^src/' }, to: unlisted },
      { from: { ...unlisted, orphan: true }, to: {} },
    ].map((rule) => ({
      name: 'layer-unlisted-folder',
      comment: 'Every folder of src/ has its place in LAYERS (.dependency-cruiser.cjs): add a new one there.',
      severity: 'error',
      ...rule,
    })),
    {
      name: 'migrations-frozen-in-time',
      comment: 'A migration imports nothing of the app, so that later changes cannot alter what it did.',
      severity: 'error',
      from: { path: '^src/db/migrations/' },
      to: { path: '^src/' },
    },
    {
      name: 'no-cycles',
      comment: 'Modules import each other in one direction only.',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'not-to-unresolvable',
      comment: 'Every import resolves (a moved file breaks here, not at run time).',
      severity: 'error',
      from: { path: '^src/' },
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      extensions: ['.ts', '.js'],
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
    },
  },
}
