// PixelMed (pixelmed.jar from Debian's pixelmed-apps) as a Query/Retrieve requester, the way its
// DicomImageViewer drives the library: a hierarchical Study Root browse (STUDY, then the SERIES of each
// study, then the IMAGEs of each series, each level's C-FIND carrying the unique keys of the levels
// above), and a C-MOVE. Run with Java's source launcher: java -cp pixelmed.jar PixelmedQr.java ...
//   tree HOST PORT CALLED CALLING [KEYWORD=VALUE ...]   one line per record: LEVEL<TAB>unique key<TAB>shown value
//   move HOST PORT CALLED CALLING DESTINATION LEVEL KEYWORD=VALUE ...   prints STATUS 0xNNNN
//   get HOST PORT CALLED CALLING FOLDER LEVEL KEYWORD=VALUE ...   C-GET (CT Image Storage, SCP role
//     proposed), prints RECEIVED <file> for each instance it stored
import com.pixelmed.dicom.Attribute;
import com.pixelmed.dicom.AttributeList;
import com.pixelmed.dicom.AttributeTag;
import com.pixelmed.dicom.DicomDictionary;
import com.pixelmed.dicom.SOPClass;
import com.pixelmed.dicom.SpecificCharacterSet;
import com.pixelmed.dicom.StoredFilePathStrategy;
import com.pixelmed.network.GetSOPClassSCU;
import com.pixelmed.network.IdentifierHandler;
import com.pixelmed.network.MoveSOPClassSCU;
import com.pixelmed.network.ReceivedObjectHandler;
import com.pixelmed.query.QueryTreeModel;
import com.pixelmed.query.QueryTreeRecord;
import com.pixelmed.query.StudyRootQueryInformationModel;

public class PixelmedQr {
  static AttributeList keys(String[] args, int from, String level) throws Exception {
    DicomDictionary dict = AttributeList.getDictionary();
    AttributeList list = new AttributeList();
    SpecificCharacterSet cs = new SpecificCharacterSet((String[]) null);
    if (level != null) {
      list.putNewAttribute(dict.getTagFromName("QueryRetrieveLevel")).addValue(level);
    }
    for (int i = from; i < args.length; i++) {
      int eq = args[i].indexOf('=');
      String name = eq < 0 ? args[i] : args[i].substring(0, eq);
      String value = eq < 0 ? "" : args[i].substring(eq + 1);
      AttributeTag tag = dict.getTagFromName(name);
      if (tag == null) throw new IllegalArgumentException("unknown keyword " + name);
      Attribute a = list.putNewAttribute(tag, cs);
      if (!value.isEmpty()) a.addValue(value);
    }
    return list;
  }

  static void walk(QueryTreeModel tree, Object node, String parents) {
    int n = tree.getChildCount(node);
    for (int i = 0; i < n; i++) {
      QueryTreeRecord r = (QueryTreeRecord) tree.getChild(node, i);
      Attribute key = r.getUniqueKey();
      String uid = key == null ? "" : key.getSingleStringValueOrEmptyString();
      System.out.println(r.getInformationEntity().toString().toUpperCase() + "\t" + uid + "\t" + r.getValue());
      walk(tree, r, parents + "/" + uid);
    }
  }

  public static void main(String[] args) throws Exception {
    String host = args[1];
    int port = Integer.parseInt(args[2]);
    String called = args[3], calling = args[4];
    if (args[0].equals("tree")) {
      StudyRootQueryInformationModel model = new StudyRootQueryInformationModel(host, port, called, calling);
      QueryTreeModel tree = model.performHierarchicalQuery(keys(args, 5, null));
      walk(tree, tree.getRoot(), "");
      model.releaseAssociations();
    } else if (args[0].equals("move")) {
      MoveSOPClassSCU move = new MoveSOPClassSCU(host, port, called, calling, args[5], SOPClass.StudyRootQueryRetrieveInformationModelMove, keys(args, 7, args[6]));
      System.out.println(String.format("STATUS 0x%04x", move.getStatus()));
    } else if (args[0].equals("get")) {
      java.util.Set<String> classes = new java.util.HashSet<String>();
      classes.add(SOPClass.CTImageStorage);
      new GetSOPClassSCU(host, port, called, calling, SOPClass.StudyRootQueryRetrieveInformationModelGet, keys(args, 7, args[6]), new IdentifierHandler(),
        new java.io.File(args[5]), StoredFilePathStrategy.BYSOPINSTANCEUIDINSINGLEFOLDER,
        new ReceivedObjectHandler() {
          public void sendReceivedObjectIndication(String file, String transferSyntax, String callingAETitle) {
            System.out.println("RECEIVED " + file);
          }
        }, classes, true, false, false);
    } else {
      throw new IllegalArgumentException("tree, move or get");
    }
    System.exit(0);
  }
}
