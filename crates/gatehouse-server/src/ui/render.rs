//! Page templates and translations: built-in (`crates/gatehouse-server/ui/`), each replaceable by a file of the
//! same name in `ui.templates_dir` (`flow.html`, `en.json`, …). Rendered with minijinja, the engine of the
//! message templates, HTML-escaped.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use minijinja::{Environment, Value};

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../../ui/templates/base.html")),
    ("flow.html", include_str!("../../ui/templates/flow.html")),
    ("account.html", include_str!("../../ui/templates/account.html")),
    ("error.html", include_str!("../../ui/templates/error.html")),
];

const TRANSLATIONS: &[(&str, &str)] =
    &[("en", include_str!("../../ui/i18n/en.json")), ("de", include_str!("../../ui/i18n/de.json"))];

pub const APP_CSS: &str = include_str!("../../ui/static/app.css");
pub const APP_JS: &str = include_str!("../../ui/static/app.js");

pub const LANGUAGES: &[&str] = &["en", "de"];

type Texts = BTreeMap<String, String>;

/// Templates and translations, loaded once at start.
pub struct Ui {
    env: Environment<'static>,
    texts: BTreeMap<String, Arc<Texts>>,
}

impl std::fmt::Debug for Ui {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ui").field("languages", &self.texts.keys().collect::<Vec<_>>()).finish_non_exhaustive()
    }
}

impl Ui {
    /// The built-ins with the files of `dir` on top; an unreadable or broken file is an error at start.
    pub fn load(dir: Option<&Path>) -> anyhow::Result<Self> {
        let read = |name: &str| -> anyhow::Result<Option<String>> {
            let Some(dir) = dir else { return Ok(None) };
            let path = dir.join(name);
            match std::fs::read_to_string(&path) {
                Ok(text) => Ok(Some(text)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(anyhow::anyhow!("ui.templates_dir {}: {e}", path.display())),
            }
        };
        let mut env = Environment::new();
        for (name, builtin) in TEMPLATES {
            let source = read(name)?.unwrap_or_else(|| (*builtin).to_owned());
            env.add_template_owned(*name, source).map_err(|e| anyhow::anyhow!("ui template {name}: {e}"))?;
        }
        let mut texts = BTreeMap::new();
        for (lang, builtin) in TRANSLATIONS {
            let mut map: Texts =
                serde_json::from_str(builtin).map_err(|e| anyhow::anyhow!("built-in translations {lang}: {e}"))?;
            if let Some(over) = read(&format!("{lang}.json"))? {
                let over: Texts = serde_json::from_str(&over).map_err(|e| anyhow::anyhow!("ui {lang}.json: {e}"))?;
                map.extend(over);
            }
            texts.insert((*lang).to_owned(), Arc::new(map));
        }
        Ok(Self { env, texts })
    }

    /// The text of `key` in `lang` (the key itself when it has none).
    pub fn text(&self, lang: &str, key: &str) -> String {
        self.texts.get(lang).and_then(|t| t.get(key)).cloned().unwrap_or_else(|| key.to_owned())
    }

    /// Renders template `name` in `lang`; the context gains `t(key)`.
    pub fn render(&self, name: &str, lang: &str, context: Value) -> Result<String, minijinja::Error> {
        let texts = self.texts.get(lang).or_else(|| self.texts.get("en")).cloned().unwrap_or_default();
        let t = Value::from_function(move |key: String| -> String { texts.get(&key).cloned().unwrap_or(key) });
        let context = minijinja::context! { t => t, ..context };
        self.env.get_template(name)?.render(context)
    }

    /// Every template renders with an empty context in every language (a broken override fails at start).
    pub fn check(&self) -> anyhow::Result<()> {
        for lang in LANGUAGES {
            for (name, _) in TEMPLATES {
                let ctx = minijinja::context! { brand => minijinja::context! { name => "x" }, lang => *lang };
                self.render(name, lang, ctx).map_err(|e| anyhow::anyhow!("ui template {name} ({lang}): {e}"))?;
            }
        }
        Ok(())
    }
}
