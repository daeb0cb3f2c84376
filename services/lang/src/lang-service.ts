import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import { LanguageSchema, type LanguageService, Phrase } from "@portico/gen/portico/lang/v1/lang_pb.js";
import { identityKey, type Queryable, requireIdentity } from "@portico/kit";
import { requireSupportedLanguage, type SupportedLanguage, storedLanguage, supportedLanguages } from "./supported-languages.js";

export interface LangServiceOptions {
  db: Queryable;
}

const MAX_NAME = 100;

function validName(name: string): string {
  const trimmed = name.trim();
  const length = [...trimmed].length;
  if (length === 0 || length > MAX_NAME) {
    throw new ConnectError(`name must be 1 to ${MAX_NAME} characters, got ${length}`, Code.InvalidArgument);
  }
  return trimmed;
}

const languageList = supportedLanguages.map(({ code, name, nativeName }) => create(LanguageSchema, { code, name, nativeName }));

/** The LanguageService handlers: one preferred language per user, and phrases rendered in it. */
export function createLangService({ db }: LangServiceOptions): ServiceImpl<typeof LanguageService> {
  const preferred = async (userId: string): Promise<string | undefined> => {
    const { rows } = await db.query<{ language: string }>("select language from user_languages where user_id = $1", [userId]);
    return rows[0]?.language;
  };

  return {
    async setLanguage(req, ctx) {
      const { userId } = requireIdentity(ctx);
      const { code } = requireSupportedLanguage("language", req.language);
      await db.query(
        `insert into user_languages (user_id, language) values ($1, $2)
         on conflict (user_id) do update set language = excluded.language, updated_at = now()`,
        [userId, code],
      );
      return { language: code };
    },

    async getLanguage(_req, ctx) {
      const { userId } = requireIdentity(ctx);
      const stored = await preferred(userId);
      return { language: storedLanguage(stored).code, chosen: stored !== undefined };
    },

    listLanguages() {
      return { languages: languageList };
    },

    async translate(req, ctx) {
      if (req.phrase !== Phrase.GREETING) {
        throw new ConnectError(`phrase ${req.phrase} is not supported: expected PHRASE_GREETING`, Code.InvalidArgument);
      }
      const name = validName(req.name);
      let language: SupportedLanguage;
      if (req.language !== "") {
        language = requireSupportedLanguage("language", req.language);
      } else {
        // The user the call is made for; a call for no user is answered in the default language.
        const user = ctx.values.get(identityKey);
        language = storedLanguage(user ? await preferred(user.userId) : undefined);
      }
      return { text: language.greet(name), language: language.code };
    },
  };
}
