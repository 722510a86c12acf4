// An example payload for a message type, made from its JSON Schema: a model's schema as
// pydantic writes it (`#/definitions/...`), or one of the AsyncAPI document's
// `components.schemas` (`#/components/schemas/...`) with that map as `definitions`.

// Friendlier values for field names the demo uses; anything else gets a value by type.
const BY_NAME = { room: "lobby", topic: "room.lobby", text: "hello", seconds: 1, rows: 100 };

const REF_PREFIXES = ["#/definitions/", "#/components/schemas/"];

function resolve(schema, root) {
  const ref = schema && schema.$ref;
  const prefix = ref && REF_PREFIXES.find((p) => ref.startsWith(p));
  if (!prefix) return schema || {};
  return (root.definitions || {})[ref.slice(prefix.length)] || {};
}

function clamp(value, schema) {
  let out = value;
  if (schema.minimum !== undefined) out = Math.max(out, schema.minimum);
  if (schema.exclusiveMinimum !== undefined) out = Math.max(out, schema.exclusiveMinimum + 1);
  if (schema.maximum !== undefined) out = Math.min(out, schema.maximum);
  return out;
}

function valueFor(name, raw, root) {
  const schema = resolve(raw, root);
  if ("default" in schema) return schema.default;
  if (Array.isArray(schema.enum) && schema.enum.length) return schema.enum[0];
  const type = schema.type || (schema.properties ? "object" : (schema.allOf ? "ref" : "string"));
  if (type === "ref") return valueFor(name, schema.allOf[0], root);
  if (!schema.type && Array.isArray(schema.anyOf)) {
    // A nullable field (`anyOf: [<type>, null]`): an example of the type.
    const other = schema.anyOf.find((option) => option.type !== "null") || {};
    return valueFor(name, other, root);
  }
  const known = BY_NAME[name];
  switch (type) {
    case "object":
      return objectFor(schema, root);
    case "integer":
      return clamp(Number.isInteger(known) ? known : 1, schema);
    case "number":
      return clamp(typeof known === "number" ? known : 1, schema);
    case "boolean":
      return false;
    case "array":
      return [];
    case "null":
      return null;
    default: {
      const text = typeof known === "string" ? known : "hello";
      return schema.maxLength !== undefined ? text.slice(0, schema.maxLength) : text;
    }
  }
}

function objectFor(schema, root) {
  const out = {};
  for (const [name, prop] of Object.entries(schema.properties || {})) {
    out[name] = valueFor(name, prop, root);
  }
  return out;
}

/**
 * The payload the editor starts with: `null` for a payload-less message. `definitions`
 * are the schemas `$ref`s point to (default: the schema's own `definitions`).
 */
export function examplePayload(schema, definitions = undefined) {
  const root = { definitions: definitions || (schema && schema.definitions) || {} };
  const payload = objectFor(resolve(schema || {}, root), root);
  return Object.keys(payload).length ? payload : null;
}
