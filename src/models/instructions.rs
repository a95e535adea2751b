//! Built-in query instructions for recruiting. Qwen3-Embedding's authors advise one English
//! sentence describing the task, given with the query only (documents get none), in the form
//! `Instruct: {task}\nQuery:{text}`.
use super::error::{ModelError, Result};

/// The built-in tasks, by name.
pub const TASKS: &[(&str, &str)] = &[
    (
        "jd_to_resume",
        "Given a job description, retrieve resumes of candidates whose skills and experience match its requirements",
    ),
    (
        "resume_to_jd",
        "Given a candidate's resume, retrieve job descriptions for roles that fit the candidate's skills and experience",
    ),
    ("jd_to_jd", "Given a job description, retrieve job descriptions of similar roles"),
    (
        "resume_to_resume",
        "Given a candidate's resume, retrieve resumes of candidates with similar skills and experience",
    ),
];

/// The task used for a Qwen3 query when the caller names none: the generic one from the model's
/// own usage example, so an instruction-less query is still formatted the way the model was trained.
pub const DEFAULT_TASK: &str =
    "Given a web search query, retrieve relevant passages that answer the query";

/// The task sentence of a built-in instruction.
pub fn task(name: &str) -> Result<&'static str> {
    TASKS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t).ok_or_else(|| ModelError::UnknownTask {
        name: name.to_owned(),
        known: TASKS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", "),
    })
}

/// A Qwen3-Embedding query: `Instruct: {task}\nQuery:{text}` (no space after "Query:").
pub fn qwen3_query(task: &str, text: &str) -> String {
    format!("Instruct: {task}\nQuery:{text}")
}
