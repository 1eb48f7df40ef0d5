// One response serializer for every route and status whose schema is the same, compiled on its first use.
// Nearly every route declares its problems (401, 413, 414, 415, 429...) as `$ref: Problem`, and Fastify compiles
// a serializer for each route, status and plugin context: hundreds of copies of a few functions, each with its
// own generated code (11 MB of RSS at `ready`). Compiled when first needed, a server holds only the ones it
// serves (issue 19, docs/decisions/0019-memory-and-hot-path.md).
import SerializerSelector from '@fastify/fast-json-stringify-compiler'

/**
 * Fastify's own serializer factory (fast-json-stringify), sharing what it compiles within one app; and
 * `compilers`, one function per serializer handed out so far that compiles it now (app.compileAllSchemas).
 */
export function createSharedSerializerFactory(): {
  factory: SerializerSelector.SerializerFactory
  compilers: (() => unknown)[]
} {
  const build = SerializerSelector()
  const shared = new Map<string, SerializerSelector.Serializer>()
  const compilers: (() => unknown)[] = []
  const factory: SerializerSelector.SerializerFactory = (externalSchemas, options) => {
    const compile = build(externalSchemas, options)
    // A serializer depends on the route's schema, the shared schemas its $refs name, and the options: all
    // three are in the key, so that a plugin context with schemas of its own never gets another's.
    const context = JSON.stringify([externalSchemas, options])
    return (route) => {
      const key = `${context}\n${JSON.stringify(route.schema)}`
      let serialize = shared.get(key)
      if (!serialize) {
        let compiled: SerializerSelector.Serializer | undefined
        const compileOnce = () => {
          compiled ??= compile(route)
          return compiled
        }
        serialize = (data) => compileOnce()(data)
        compilers.push(compileOnce)
        shared.set(key, serialize)
      }
      return serialize
    }
  }
  return { factory, compilers }
}
