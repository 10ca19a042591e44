"""Language of a file from its name: the 18 top languages of The Stack plus config and markup.

Extensions follow The Stack v1's `programming-languages-to-file-extensions` table for the
languages it covers; names are lower-case and match The Stack's `lang` values where they exist.
"""

from __future__ import annotations

EXTENSIONS: dict[str, tuple[str, ...]] = {
    # The Stack's most common programming languages (the paper trains on 18 of these).
    "python": (".py", ".pyi", ".pyx", ".pxd", ".pyw"),
    "java": (".java",),
    "javascript": (".js", ".mjs", ".cjs", ".jsx"),
    "typescript": (".ts", ".tsx", ".mts", ".cts"),
    "c": (".c", ".h"),
    "c++": (".cpp", ".cc", ".cxx", ".c++", ".hpp", ".hh", ".hxx", ".h++", ".inl", ".ipp"),
    "c-sharp": (".cs",),
    "go": (".go",),
    "rust": (".rs",),
    "php": (".php", ".phtml"),
    "ruby": (".rb", ".rake", ".gemspec"),
    "shell": (".sh", ".bash", ".zsh", ".ksh", ".fish"),
    "sql": (".sql",),
    "kotlin": (".kt", ".kts"),
    "scala": (".scala", ".sc"),
    "swift": (".swift",),
    "lua": (".lua",),
    "perl": (".pl", ".pm", ".t"),
    "r": (".r", ".R"),
    "julia": (".jl",),
    "haskell": (".hs", ".lhs"),
    "dart": (".dart",),
    "objective-c": (".m", ".mm"),
    "fortran": (".f", ".f90", ".f95", ".f03", ".for"),
    "powershell": (".ps1", ".psm1", ".psd1"),
    "batchfile": (".bat", ".cmd"),
    "assembly": (".s", ".S", ".asm"),
    "cuda": (".cu", ".cuh"),
    "tcl": (".tcl", ".tk"),
    "vim-script": (".vim",),
    "elixir": (".ex", ".exs"),
    "erlang": (".erl", ".hrl"),
    "ocaml": (".ml", ".mli"),
    "clojure": (".clj", ".cljs", ".cljc"),
    "groovy": (".groovy", ".gradle"),
    "cmake": (".cmake",),
    "makefile": (".mk", ".mak"),
    "dockerfile": (".dockerfile",),
    "jupyter-notebook": (".ipynb",),
    # Config and markup.
    "json": (".json", ".jsonl", ".geojson"),
    "yaml": (".yaml", ".yml"),
    "toml": (".toml",),
    "xml": (".xml", ".xsd", ".xsl", ".xslt", ".svg", ".plist", ".wsdl"),
    "html": (".html", ".htm", ".xhtml"),
    "css": (".css", ".scss", ".sass", ".less"),
    "markdown": (".md", ".markdown"),
    "restructuredtext": (".rst",),
    "tex": (".tex", ".sty", ".cls"),
    "ini": (".ini", ".cfg", ".conf"),
    "protocol-buffer": (".proto",),
    "thrift": (".thrift",),
    "text": (".txt",),
}

FILENAMES: dict[str, str] = {
    "Makefile": "makefile",
    "GNUmakefile": "makefile",
    "makefile": "makefile",
    "Dockerfile": "dockerfile",
    "CMakeLists.txt": "cmake",
    "Rakefile": "ruby",
    "Gemfile": "ruby",
    "Jenkinsfile": "groovy",
}

LANGUAGES: frozenset[str] = frozenset(EXTENSIONS) | frozenset(FILENAMES.values())

_BY_SUFFIX: dict[str, str] = {ext: lang for lang, exts in EXTENSIONS.items() for ext in exts}
_BY_SUFFIX_LOWER: dict[str, str] = {ext.lower(): lang for ext, lang in _BY_SUFFIX.items()}

# Names The Stack (and other datasets) use in their `lang` column, mapped to ours.
_ALIASES: dict[str, str] = {
    "c#": "c-sharp",
    "csharp": "c-sharp",
    "cpp": "c++",
    "bash": "shell",
    "jupyter notebook": "jupyter-notebook",
    "batch": "batchfile",
    "restructured text": "restructuredtext",
    "vim script": "vim-script",
    "objective c": "objective-c",
    "objectivec": "objective-c",
}


def language_of(path: str) -> str | None:
    """The language of a file by its name, or None when the table does not know it."""
    name = path.rpartition("/")[2]
    if name in FILENAMES:
        return FILENAMES[name]
    dot = name.rfind(".")
    if dot <= 0:  # no suffix, or a dotfile such as `.bashrc`
        return None
    suffix = name[dot:]
    return _BY_SUFFIX.get(suffix) or _BY_SUFFIX_LOWER.get(suffix.lower())


def normalize_language(name: str | None) -> str | None:
    """Map a dataset's language label (e.g. The Stack's `lang`) to our names."""
    if not name:
        return None
    lowered = name.strip().lower()
    lowered = _ALIASES.get(lowered, lowered)
    return lowered if lowered in LANGUAGES else None
