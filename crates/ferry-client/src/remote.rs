//! ferry's own REST API for people and administrators, so the commands that read the queue and
//! the definitions work without database access: messages (`/api/messages`, reader role), their
//! rejected rows (paged) and rejected-rows files, and data projects and recurring jobs
//! (`/api/admin/…`, admin role). The documents are the server's, passed on unchanged.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::connector::{attachment_name, safe_file_name};
use crate::error::ClientResult;
use crate::files::{Progress, save_response};
use crate::http::Connection;
use crate::status::encode;

/// Which messages to list.
#[derive(Clone, Debug, Default)]
pub struct MessageQuery {
    pub job: Option<String>,
    pub state: Option<String>,
    pub limit: u32,
}

/// Which rejected rows to read.
#[derive(Clone, Debug, Default)]
pub struct ErrorQuery {
    pub stage: Option<String>,
    pub entity: Option<String>,
    /// At most this many rows in all.
    pub limit: u32,
}

impl Connection {
    /// The newest messages, as `/api/messages` lists them.
    pub async fn list_messages(&self, query: &MessageQuery) -> ClientResult<Vec<Value>> {
        let mut params = vec![format!("limit={}", query.limit.clamp(1, 1000))];
        if let Some(job) = &query.job {
            params.push(format!("activity={}", encode(job)));
        }
        if let Some(state) = &query.state {
            params.push(format!("state={}", encode(state)));
        }
        let page = self.get_json("list messages", &format!("/api/messages?{}", params.join("&"))).await?;
        Ok(page["value"].as_array().cloned().unwrap_or_default())
    }

    /// A message's rejected rows, following `next` links up to `limit` rows.
    pub async fn message_errors(&self, id: &str, query: &ErrorQuery) -> ClientResult<Vec<Value>> {
        let limit = query.limit.max(1);
        let mut params = vec![format!("limit={}", limit.min(1000))];
        if let Some(stage) = &query.stage {
            params.push(format!("stage={}", encode(stage)));
        }
        if let Some(entity) = &query.entity {
            params.push(format!("entity={}", encode(entity)));
        }
        let mut path = format!("/api/messages/{}/errors?{}", encode(id.trim()), params.join("&"));
        let mut rows = Vec::new();
        loop {
            let page = self.get_json("rejected rows", &path).await?;
            rows.extend(page["value"].as_array().cloned().unwrap_or_default());
            let next = page["next"].as_str().map(str::to_owned);
            match next {
                Some(next) if (rows.len() as u32) < limit => {
                    // `next` is absolute, under the server's public URL: keep the path and query.
                    path = next.find("/api/").map_or(next.clone(), |at| next[at..].to_owned());
                }
                _ => break,
            }
        }
        rows.truncate(limit as usize);
        Ok(rows)
    }

    /// Downloads the rejected-rows file of each entity that has one (the message document's
    /// `rejected_link`s) into `dest`: the file itself when there is one, else `dest` is a
    /// directory holding one file per entity. Answers the files written.
    pub async fn download_rejected(
        &self,
        document: &Value,
        dest: &Path,
        progress: &dyn Progress,
    ) -> ClientResult<Vec<PathBuf>> {
        let links: Vec<(String, String)> = document["entities"]
            .as_array()
            .map(|entities| {
                entities
                    .iter()
                    .filter_map(|e| {
                        let link = e["rejected_link"].as_str()?;
                        Some((e["entity"].as_str().unwrap_or("entity").to_owned(), link.to_owned()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut written = Vec::new();
        let single = links.len() == 1;
        for (entity, link) in links {
            let path = link.find("/api/").map_or(link.clone(), |at| link[at..].to_owned());
            let url = self.url(&path);
            let response = self.send("rejected rows file", true, |http| Ok(http.get(&url))).await?;
            let target = if single {
                dest.to_path_buf()
            } else {
                let name = attachment_name(&response).unwrap_or_else(|| entity.clone());
                dest.join(safe_file_name(&name))
            };
            save_response(response, &target, progress).await?;
            written.push(target);
        }
        Ok(written)
    }

    /// The data projects (`/api/admin/projects`).
    pub async fn list_projects(&self) -> ClientResult<Vec<Value>> {
        Ok(self.get_json("list projects", "/api/admin/projects").await?.as_array().cloned().unwrap_or_default())
    }

    /// One data project.
    pub async fn project(&self, name: &str) -> ClientResult<Value> {
        self.get_json("show project", &format!("/api/admin/projects/{}", encode(name.trim()))).await
    }

    /// The recurring jobs (`/api/admin/jobs`).
    pub async fn list_jobs(&self) -> ClientResult<Vec<Value>> {
        Ok(self.get_json("list jobs", "/api/admin/jobs").await?.as_array().cloned().unwrap_or_default())
    }

    /// One recurring job.
    pub async fn job(&self, activity_id: &str) -> ClientResult<Value> {
        self.get_json("show job", &format!("/api/admin/jobs/{}", encode(activity_id.trim()))).await
    }
}
