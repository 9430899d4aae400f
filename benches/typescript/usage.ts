// What a TypeScript client of the crm API writes, against the types openapi-typescript
// generates from the served document (generated/api.d.ts, made by check.sh). It is only
// type-checked, never run: it proves the document yields a client whose paths, parameters,
// bodies and answers have real types. The `@ts-expect-error` lines prove they are not
// `any`: each must be refused, or tsc fails on the unused directive.

import createClient from "openapi-fetch";
import type { components, paths } from "./generated/api";

type Schemas = components["schemas"];
type Contact = Schemas["Contact"];
type ContactInput = Schemas["ContactInput"];
type ContactPage = Schemas["ContactPage"];
type ApiError = Schemas["Error"];

const api = createClient<paths>({ baseUrl: "http://127.0.0.1:8080/api/v1" });

/// Signs in and answers the access token.
async function signIn(email: string, password: string): Promise<string> {
  const { data, error } = await api.POST("/auth/login", { body: { email, password } });
  if (error) throw new Error(describe(error));
  const token: string = data.access_token;
  return token;
}

/// The coded error's user-facing text, with its code and failing fields.
function describe(e: ApiError): string {
  const fields = e.error.fields.map((f) => `${f.field}: ${f.message} (${f.code})`);
  return [`${e.error.message} [${e.error.code}]`, ...fields].join("\n");
}

function label(c: Contact): string {
  const version: number = c.version;
  const id: string = c.id;
  return `${c.first_name} ${c.last_name} (${id}, v${version})`;
}

async function demo(): Promise<void> {
  const token = await signIn("ada@acme.test", "any password");
  const headers = { Authorization: `Bearer ${token}` };

  // Create: 201 with the record.
  const input: ContactInput = { first_name: "Grace", last_name: "Hopper" };
  const created = await api.POST("/contacts", { body: input, headers });
  if (created.error) throw new Error(describe(created.error));
  const grace: Contact = created.data;

  // Read one, by its id in the path.
  const one = await api.GET("/contacts/{id}", { params: { path: { id: grace.id } }, headers });
  if (one.data) console.log(label(one.data));

  // Update: PATCH with If-Match (the ETag is the version).
  const patched = await api.PATCH("/contacts/{id}", {
    params: { path: { id: grace.id }, header: { "If-Match": `"${grace.version}"` } },
    body: { title: "Rear Admiral" },
    headers,
  });
  if (patched.error) console.error(describe(patched.error));

  // List with search, sort and paging.
  let cursor: string | undefined;
  do {
    const page = await api.GET("/contacts", {
      params: { query: { q: "gra", sort: "-last_name", limit: 25, ...(cursor ? { cursor } : {}) } },
      headers,
    });
    if (page.error) throw new Error(describe(page.error));
    const data: ContactPage = page.data;
    data.data.map(label).forEach((l) => console.log(l));
    cursor = data.next_cursor ?? undefined;
  } while (cursor);

  // Soft delete answers 204, no body.
  await api.DELETE("/contacts/{id}", { params: { path: { id: grace.id } }, headers });

  // Things the types refuse.
  // @ts-expect-error: no such path
  await api.GET("/no-such-path", { headers });
  // @ts-expect-error: the id is a path parameter and is required
  await api.GET("/contacts/{id}", { headers });
  // @ts-expect-error: limit is an integer
  await api.GET("/contacts", { params: { query: { limit: "ten" } }, headers });
  // @ts-expect-error: login needs a password
  await api.POST("/auth/login", { body: { email: "ada@acme.test" } });
  // @ts-expect-error: a contact has no such field
  const wrong: ContactInput = { first_name: "Grace", no_such_field: 1 };
  void wrong;
}

void demo;
