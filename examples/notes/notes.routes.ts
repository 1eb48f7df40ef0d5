// examples/notes/notes.routes.ts: a feature of your own, as docs/adding-a-route.md builds it. Each route
// declares who may call it (auth) and what it counts (rateLimit) beside its schema; the server refuses to
// start when a public route, or one whose body carries a secret, declares no limit.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { AppError } from '../../src/http/problem.ts'
import { NoContent, problems } from '../../src/http/responses.ts'
import { newId } from '../../src/lib/ids.ts'

const Note = Type.Object({ id: Type.String({ format: 'uuid' }), text: Type.String() })
const NewNote = Type.Object(
  { text: Type.String({ minLength: 1, maxLength: 1000 }) },
  { additionalProperties: false },
)
const NoteParams = Type.Object({ id: Type.String({ format: 'uuid' }) })

/** Where notes live: a Map here, a repository over the database in a real feature (see the guide). */
export function createNoteStore() {
  const notes = new Map<string, { ownerId: string; text: string }>()
  return {
    add: (ownerId: string, text: string) => {
      const id = newId()
      notes.set(id, { ownerId, text })
      return { id, text }
    },
    getForOwner(ownerId: string, id: string) {
      const note = notes.get(id)
      // Another user's note is "not found", not "forbidden": its existence is not theirs to learn.
      if (!note || note.ownerId !== ownerId) throw new AppError('not_found', 'No such note')
      return { id, text: note.text }
    },
    clear: () => notes.clear(),
  }
}

export function notesRoutes(notes = createNoteStore()): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get(
      '/notes/about',
      {
        config: { auth: 'public', rateLimit: { none: 'constant text, no secret checked' } },
        schema: { response: { 200: Type.Object({ about: Type.String() }) } },
      },
      async () => ({ about: 'Notes: write them signed in, read your own.' }),
    )

    // No `auth`: any valid access token. No secret in the body, so no limit is required.
    app.post(
      '/notes',
      { schema: { body: NewNote, response: { 201: Note, ...problems(400) } } },
      async (request, reply) => reply.code(201).send(notes.add(request.auth.userId, request.body.text)),
    )

    app.get(
      '/notes/:id',
      { schema: { params: NoteParams, response: { 200: Note, ...problems(400, 404) } } },
      async (request) => notes.getForOwner(request.auth.userId, request.params.id),
    )

    app.delete(
      '/notes',
      { config: { auth: { roles: ['admin'] } }, schema: { response: { 204: NoContent } } },
      async (_request, reply) => {
        notes.clear()
        return reply.code(204).send(null)
      },
    )
  }
}
