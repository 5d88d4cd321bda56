//! Which layers of the repo provide a distribution: those whose requirements.txt names it.

use super::name::normalise;
use super::requirement::requirement_name;
use crate::repo::Repo;

/// The layers of the repo whose requirements.txt has a line installing `dist` (compared by
/// normalised name), in the repo's order. A layer whose file cannot be read is left out.
pub fn providers(repo: &Repo, dist: &str) -> Vec<String> {
    let wanted = normalise(dist);
    let lists = |layer: &String| {
        std::fs::read_to_string(repo.layers_dir().join(layer).join("requirements.txt"))
            .is_ok_and(|t| t.lines().any(|line| requirement_name(line).is_some_and(|n| n == wanted)))
    };
    repo.layer_names().unwrap_or_default().into_iter().filter(lists).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_naming_the_distribution_in_any_spelling_provide_it() {
        let d = tempfile::tempdir().unwrap();
        for (layer, text) in [
            ("a", "six==1.16.0\n"),
            ("b", "# numpy\n--only-binary=:all:\n  NumPy==2.3.5  # pinned\n"),
            ("c", "numpy-financial==1.0\n"),
            ("d", "numpy @ https://x/numpy.whl\n"),
        ] {
            std::fs::create_dir_all(d.path().join("layers").join(layer)).unwrap();
            std::fs::write(d.path().join("layers").join(layer).join("requirements.txt"), text).unwrap();
        }
        let repo = Repo { root: d.path().to_path_buf() };
        assert_eq!(providers(&repo, "numpy"), ["b", "d"]);
        assert_eq!(providers(&repo, "Numpy_Financial"), ["c"]);
        assert!(providers(&repo, "pandas").is_empty());
    }
}
